//! Task clear: find a task by URL or id, see which peers hold it, delete it from them.
//!
//! Both steps are jobs (`get_task`, then `delete_task`), so they are audited and appear in the
//! jobs list like any other; this page follows each job until it ends.

use leptos::prelude::*;

use super::jobs::{JobView, follow_job};
use crate::{
    api::{clusters::all_clusters, jobs::TaskJob},
    components::{ClusterSelect, FieldError, FormError},
};

const ALL: &str = "All clusters of my tenant";

#[component]
pub fn TaskClearPage() -> impl IntoView {
    let start = ServerAction::<TaskJob>::new();
    let error = Signal::derive(move || start.value().get().and_then(Result::err));
    let clusters = Resource::new(|| (), |_| all_clusters());
    let started = move || start.value().get().and_then(Result::ok);
    view! {
        <section class="card" aria-labelledby="clear-title">
            <h1 id="clear-title">"Clear a task"</h1>
            <p class="muted">
                "Enter the URL a file was downloaded from (with the tag and application it was downloaded with, if any) "
                "or its task id. Find shows which peers hold it; Delete removes it from them, so the next download fetches it again."
            </p>
            <ActionForm action=start attr:class="form-grid" attr:id="task-form">
                <label for="task">"URL or task id"</label>
                <input id="task" name="task" required placeholder="https://example.com/file.tar.gz" />
                <FieldError error field="task" />
                <label for="tag">"Tag"</label>
                <input id="tag" name="tag" />
                <label for="application">"Application"</label>
                <input id="application" name="application" />
                <label for="cluster_id">"Cluster"</label>
                <Suspense fallback=|| view! { <ClusterSelect id="cluster_id" name="cluster_id" any=ALL clusters=Vec::new() selected=String::new() /> }>
                    {move || clusters.get().map(|r| view! {
                        <ClusterSelect id="cluster_id" name="cluster_id" any=ALL clusters=r.unwrap_or_default() selected=String::new() />
                    })}
                </Suspense>
                <FieldError error field="cluster_id" />
                <FieldError error field="scheduler_cluster_ids" />
                <FormError error fields=&["task", "cluster_id", "scheduler_cluster_ids"] />
                <div class="actions">
                    <button type="submit" name="delete" value="false" id="find-task" disabled=move || start.pending().get()>"Find"</button>
                    <button type="submit" name="delete" value="true" id="delete-task" class="danger" disabled=move || start.pending().get()>"Delete"</button>
                </div>
            </ActionForm>
        </section>
        {move || started().map(|job| view! { <FollowJob id=job.id /> })}
    }
}

/// A job's page inline, followed until it ends.
#[component]
fn FollowJob(id: i64) -> impl IntoView {
    let job = follow_job(move || Some(id));
    view! {
        <Transition>
            {move || job.get().and_then(Result::ok).map(|report| view! { <JobView report /> })}
        </Transition>
    }
}

//! One cluster: its settings, its schedulers and seed peers with state and last keepalive, and
//! deleting inactive hosts or the cluster itself.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use crate::{
    api::{
        clusters::{DeleteCluster, cluster_from_param},
        hosts::{DeleteHost, HostKind, list_hosts},
    },
    components::{ErrorNote, FormError, Loading, StateBadge},
    context::use_me,
};
use common::api::{Cluster, short_time};

#[component]
pub fn ClusterDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));
    let cluster = Resource::new(id, cluster_from_param);
    // Every resource is made here, at the page's top, and each table has its own Suspense:
    // resources created inside another Suspense's content do not hydrate reliably.
    let me = use_me();
    let admin = Signal::derive(move || cluster.get().and_then(Result::ok).is_some_and(|c| me.administers(c.tenant_id)));
    view! {
        <Suspense fallback=Loading>
            {move || cluster.get().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(c) => view! { <ClusterView cluster=c /> }.into_any(),
            })}
        </Suspense>
        <HostTable kind=HostKind::Scheduler cluster_id=Signal::derive(id) admin />
        <HostTable kind=HostKind::SeedPeer cluster_id=Signal::derive(id) admin />
    }
}

#[component]
fn ClusterView(cluster: Cluster) -> impl IntoView {
    let me = use_me();
    let admin = me.administers(cluster.tenant_id);
    let delete = ServerAction::<DeleteCluster>::new();
    let error = Signal::derive(move || delete.value().get().and_then(Result::err));
    Effect::new(move || {
        if delete.value().get().is_some_and(|r| r.is_ok()) {
            let _ = window().location().set_href("/clusters");
        }
    });
    let c = cluster;
    let list = |v: &[String]| if v.is_empty() { "—".to_owned() } else { v.join(", ") };
    view! {
        <section class="card" aria-labelledby="cluster-title">
            <div class="heading">
                <h1 id="cluster-title">{c.name.clone()} {c.is_default.then(|| view! { " " <span class="badge">"default"</span> })}</h1>
                {admin.then(|| view! {
                    <div class="actions">
                        <A href=format!("/clusters/{}/edit", c.id) attr:class="button">"Edit"</A>
                        <ActionForm action=delete attr:class="inline" attr:data-confirm="Delete this cluster? Its schedulers and seed peers stop being served by it.">
                            <input type="hidden" name="id" value=c.id />
                            <button type="submit" class="danger" id="delete-cluster">"Delete"</button>
                        </ActionForm>
                    </div>
                })}
            </div>
            <FormError error fields=&[] />
            <p class="muted">{c.bio.clone()}</p>
            <dl class="facts">
                <dt>"Tenant"</dt><dd>{me.tenant_name(c.tenant_id)}</dd>
                <dt>"IDC"</dt><dd>{if c.scopes.idc.is_empty() { "—".into() } else { c.scopes.idc.clone() }}</dd>
                <dt>"Location"</dt><dd>{if c.scopes.location.is_empty() { "—".into() } else { c.scopes.location.clone() }}</dd>
                <dt>"CIDRs"</dt><dd>{list(&c.scopes.cidrs)}</dd>
                <dt>"Hostnames"</dt><dd>{list(&c.scopes.hostnames)}</dd>
                <dt>"Candidate / filter parents"</dt>
                <dd>{format!("{} / {}", c.scheduler_cluster_config.candidate_parent_limit, c.scheduler_cluster_config.filter_parent_limit)}</dd>
                <dt>"Jobs per second"</dt><dd>{c.scheduler_cluster_config.job_rate_limit}</dd>
                <dt>"Load limits (seed peer / peer)"</dt>
                <dd>{format!("{} / {}", c.seed_peer_cluster_config.load_limit, c.peer_cluster_config.load_limit)}</dd>
                <dt>"Blocked URLs"</dt><dd>{list(&c.peer_cluster_config.block_list.urls)}</dd>
                <dt>"Blocked applications"</dt><dd>{list(&c.peer_cluster_config.block_list.applications)}</dd>
                <dt>"Blocked tags"</dt><dd>{list(&c.peer_cluster_config.block_list.tags)}</dd>
                <dt>"Created"</dt><dd>{short_time(&c.created_at)}</dd>
            </dl>
        </section>
    }
}

/// The cluster's hosts of one kind; inactive ones can be deleted by the tenant's admins.
#[component]
fn HostTable(kind: HostKind, cluster_id: Signal<Option<i64>>, admin: Signal<bool>) -> impl IntoView {
    let delete = ServerAction::<DeleteHost>::new();
    let hosts = Resource::new(
        move || (cluster_id.get(), delete.version().get()),
        move |(cluster_id, _)| async move {
            match cluster_id {
                Some(id) => list_hosts(kind, Some(id), String::new(), String::new(), 1, 1000).await,
                None => Ok(crate::api::page::Page { items: vec![], total: 0, page: 1, per_page: 1000 }),
            }
        },
    );
    let error = Signal::derive(move || delete.value().get().and_then(Result::err));
    let (title, id) = match kind {
        HostKind::Scheduler => ("Schedulers", "schedulers"),
        HostKind::SeedPeer => ("Seed peers", "seed-peers"),
        HostKind::Peer => ("Peers", "peers"),
    };
    view! {
        <section class="card" aria-labelledby=format!("{id}-title")>
            <h2 id=format!("{id}-title")>{title}</h2>
            <FormError error fields=&[] />
            <Suspense fallback=Loading>
                {move || hosts.get().map(|r| {
                    let (admin, cluster_id) = (admin.get(), cluster_id.get().unwrap_or_default());
                    match r {
                    // The cluster's own card already says what went wrong.
                    Err(_) => ().into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">{format!(
                            "No {} has registered with this cluster yet. Start one with this cluster's id ({cluster_id}) in its [manager] config.",
                            kind.label()
                        )}</p>
                    }.into_any(),
                    Ok(page) => view! {
                        <table id=format!("{id}-table")>
                            <thead><tr>
                                <th scope="col">"Hostname"</th><th scope="col">"Address"</th><th scope="col">"State"</th>
                                <th scope="col">"Last keepalive"</th><th scope="col">"IDC · location"</th>
                                <th scope="col">"Version"</th><th scope="col">"Features"</th><th scope="col"></th>
                            </tr></thead>
                            <tbody>
                                {page.items.into_iter().map(|h| {
                                    let inactive = h.state != "active";
                                    view! {
                                        <tr data-hostname=h.hostname.clone()>
                                            <td>{h.hostname.clone()}</td>
                                            <td><code>{format!("{}:{}", h.ip, h.port)}</code></td>
                                            <td><StateBadge state=h.state.clone() /></td>
                                            <td>{h.last_keep_alive_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                                            <td>{[h.idc.clone(), h.location.clone()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · ")}</td>
                                            <td>{h.version.clone()}</td>
                                            <td>{h.features.join(", ")}</td>
                                            <td>{(admin && inactive).then(|| view! {
                                                <ActionForm action=delete attr:class="inline">
                                                    <input type="hidden" name="kind" value=format!("{kind:?}") />
                                                    <input type="hidden" name="id" value=h.id />
                                                    <button type="submit" class="link-button danger">"Delete"</button>
                                                </ActionForm>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }})}
            </Suspense>
        </section>
    }
}

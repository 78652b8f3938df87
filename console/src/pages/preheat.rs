//! Preheat: warm the caches of a cluster's hosts with an image or files before they are needed.
//!
//! The form posts Dragonfly's preheat arguments through the API, which checks them all; its
//! messages show next to the fields they name. A created job opens on its own page, which
//! follows it live. The registry password goes to the API in the request body only, and no
//! answer carries it back.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    api::{
        clusters::all_clusters,
        jobs::{PREHEAT_FIELDS, Preheat},
    },
    components::{FieldError, FormError},
};

const SCOPES: &[(&str, &str)] =
    &[("single_seed_peer", "one seed peer"), ("all_seed_peers", "every seed peer"), ("all_peers", "every peer")];

#[component]
pub fn PreheatPage() -> impl IntoView {
    let action = ServerAction::<Preheat>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    // Created: go to the job's page, which follows it.
    Effect::new(move || {
        if let Some(Ok(job)) = action.value().get() {
            let _ = window().location().set_href(&format!("/jobs/{}", job.id));
        }
    });
    let clusters = Resource::new(|| (), |_| all_clusters());
    let image = RwSignal::new(true);
    view! {
        <section class="card" aria-labelledby="preheat-title">
            <h1 id="preheat-title">"Preheat"</h1>
            <p class="muted">
                "Have hosts fetch an image or files into their caches now, so later pulls and downloads find them warm."
            </p>
            <ActionForm action attr:class="form-grid" attr:id="preheat-form">
                <fieldset>
                    <legend>"What"</legend>
                    <label for="kind">"Type"</label>
                    <select id="kind" name="form[kind]" on:change=move |ev| image.set(event_target_value(&ev) == "image")>
                        <option value="image">"image"</option>
                        <option value="file">"file"</option>
                    </select>
                    <FieldError error field="kind" />
                    <label for="urls">
                        {move || if image.get() { "Manifest URL (https://registry/v2/<repository>/manifests/<tag or digest>)" } else { "URLs, one per line" }}
                    </label>
                    <textarea id="urls" name="form[urls]" rows="3" required></textarea>
                    <FieldError error field="urls" />
                    <div hidden=move || !image.get()>
                        <label for="platform">"Platform (os/arch[/variant])"</label>
                        <input id="platform" name="form[platform]" value="linux/amd64" />
                        <FieldError error field="platform" />
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"Where"</legend>
                    <label for="scope">"Hosts"</label>
                    <select id="scope" name="form[scope]">
                        {SCOPES.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                    </select>
                    <FieldError error field="scope" />
                    <p class="muted">"Narrow them (IPs, if given, else the count, else the percentage):"</p>
                    <label for="ips">"IPs, one per line"</label>
                    <textarea id="ips" name="form[ips]" rows="2"></textarea>
                    <FieldError error field="ips" />
                    <label for="count">"Count of hosts"</label>
                    <input id="count" name="form[count]" inputmode="numeric" />
                    <FieldError error field="count" />
                    <label for="percentage">"Percentage of hosts (1–100)"</label>
                    <input id="percentage" name="form[percentage]" inputmode="numeric" />
                    <FieldError error field="percentage" />
                    <fieldset class="checks">
                        <legend>"Clusters (none ticked: every cluster of your tenant)"</legend>
                        <Suspense>
                            {move || clusters.get().map(|r| r.unwrap_or_default().into_iter().map(|c| view! {
                                <label class="check">
                                    <input type="checkbox" name="form[clusters][]" value=c.id />
                                    {c.name}
                                </label>
                            }).collect_view())}
                        </Suspense>
                    </fieldset>
                    <FieldError error field="clusters" />
                </fieldset>
                <fieldset>
                    <legend>"Access"</legend>
                    <label for="headers">"Headers, one per line (Name: value)"</label>
                    <textarea id="headers" name="form[headers]" rows="2" placeholder="Authorization: Bearer …"></textarea>
                    <FieldError error field="headers" />
                    <div hidden=move || !image.get()>
                        <label for="username">"Registry user name"</label>
                        <input id="username" name="form[username]" autocomplete="off" />
                        <FieldError error field="username" />
                        <label for="password">"Registry password"</label>
                        <input id="password" name="form[password]" type="password" autocomplete="new-password" />
                        <FieldError error field="password" />
                    </div>
                </fieldset>
                <details>
                    <summary>"More: task identity, pacing"</summary>
                    <label for="tag">"Tag"</label>
                    <input id="tag" name="form[tag]" />
                    <label for="application">"Application"</label>
                    <input id="application" name="form[application]" />
                    <label for="filtered_query_params">"Query parameters left out of the task id (separated by &)"</label>
                    <input id="filtered_query_params" name="form[filtered_query_params]" />
                    <FieldError error field="filtered_query_params" />
                    <label for="piece_length">"Piece length in bytes (empty: chosen by size)"</label>
                    <input id="piece_length" name="form[piece_length]" inputmode="numeric" />
                    <FieldError error field="piece_length" />
                    <label for="concurrent_count">"Tasks at once per host (empty: 8)"</label>
                    <input id="concurrent_count" name="form[concurrent_count]" inputmode="numeric" />
                    <FieldError error field="concurrent_count" />
                    <label for="timeout">"Timeout in seconds (empty: the manager's)"</label>
                    <input id="timeout" name="form[timeout]" inputmode="numeric" />
                    <FieldError error field="timeout" />
                </details>
                <FormError error fields=PREHEAT_FIELDS />
                <div class="actions">
                    <button type="submit" id="start-preheat" disabled=move || action.pending().get()>"Preheat"</button>
                    <A href="/jobs" attr:class="button secondary">"Cancel"</A>
                </div>
            </ActionForm>
        </section>
    }
}

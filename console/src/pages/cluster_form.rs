//! Creating and editing a cluster: scopes, limits and block lists, with the API's messages next
//! to the fields they are about.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use crate::{
    api::clusters::{ClusterForm, SaveCluster, cluster_from_param},
    components::{ErrorNote, FieldError, FormError, Loading},
    context::use_me,
};

const FIELDS: &[&str] = &[
    "name",
    "bio",
    "tenant_id",
    "idc",
    "location",
    "cidrs",
    "hostnames",
    "candidate_parent_limit",
    "filter_parent_limit",
    "job_rate_limit",
    "seed_peer_load_limit",
    "peer_load_limit",
    "block_applications",
    "block_urls",
    "block_tags",
    "is_default",
];

#[component]
pub fn NewClusterPage() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="form-title">
            <h1 id="form-title">"New cluster"</h1>
            <ClusterEditor id=None initial=ClusterForm::new_cluster() />
        </section>
    }
}

#[component]
pub fn EditClusterPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));
    let cluster = Resource::new(id, cluster_from_param);
    view! {
        <Suspense fallback=Loading>
            {move || cluster.get().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(c) => view! {
                    <section class="card" aria-labelledby="form-title">
                        <h1 id="form-title">"Edit " {c.name.clone()}</h1>
                        <ClusterEditor id=Some(c.id) initial=ClusterForm::from_cluster(&c) />
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn ClusterEditor(id: Option<i64>, initial: ClusterForm) -> impl IntoView {
    let me = use_me();
    let action = ServerAction::<SaveCluster>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    // Saved: go to the cluster's page (a full load, so lists show the change).
    Effect::new(move || {
        if let Some(Ok(c)) = action.value().get() {
            let _ = window().location().set_href(&format!("/clusters/{}", c.id));
        }
    });
    let admin_tenants: Vec<_> =
        me.tenants.iter().filter(|m| m.role == common::api::Role::Admin || me.is_root()).cloned().collect();
    let cancel = id.map(|id| format!("/clusters/{id}")).unwrap_or_else(|| "/clusters".into());
    let f = initial;
    view! {
        <ActionForm action attr:class="form-grid" attr:id="cluster-form">
            {id.map(|id| view! { <input type="hidden" name="id" value=id /> })}
            <fieldset>
                <legend>"Cluster"</legend>
                <label for="name">"Name"</label>
                <input id="name" name="form[name]" value=f.name required maxlength="256" />
                <FieldError error field="name" />
                <label for="bio">"Description"</label>
                <input id="bio" name="form[bio]" value=f.bio />
                <FieldError error field="bio" />
                {if id.is_none() && admin_tenants.len() > 1 {
                    view! {
                        <label for="tenant_id">"Tenant"</label>
                        <select id="tenant_id" name="form[tenant_id]">
                            {admin_tenants.iter().map(|m| view! {
                                <option value=m.tenant_id>{m.tenant_name.clone()}</option>
                            }).collect_view()}
                        </select>
                        <FieldError error field="tenant_id" />
                    }.into_any()
                } else {
                    view! { <input type="hidden" name="form[tenant_id]" value=if id.is_none() { f.tenant_id.clone() } else { String::new() } /> }.into_any()
                }}
                <label class="check">
                    <input type="checkbox" name="form[is_default]" checked=f.is_default.is_some() />
                    " Default cluster (peers that match no other cluster's scopes use it; platform root only)"
                </label>
                <FieldError error field="is_default" />
            </fieldset>
            <fieldset>
                <legend>"Scopes (which peers this cluster serves)"</legend>
                <label for="idc">"IDC"</label>
                <input id="idc" name="form[idc]" value=f.idc />
                <FieldError error field="idc" />
                <label for="location">"Location (such as country|province|city)"</label>
                <input id="location" name="form[location]" value=f.location />
                <FieldError error field="location" />
                <label for="cidrs">"CIDRs, one per line"</label>
                <textarea id="cidrs" name="form[cidrs]" rows="3" placeholder="10.0.0.0/8">{f.cidrs}</textarea>
                <FieldError error field="cidrs" />
                <label for="hostnames">"Hostname patterns (regular expressions), one per line"</label>
                <textarea id="hostnames" name="form[hostnames]" rows="3">{f.hostnames}</textarea>
                <FieldError error field="hostnames" />
            </fieldset>
            <fieldset>
                <legend>"Limits"</legend>
                <label for="candidate_parent_limit">"Candidate parents per peer (1–20)"</label>
                <input id="candidate_parent_limit" name="form[candidate_parent_limit]" type="number" min="1" max="20" value=f.candidate_parent_limit required />
                <FieldError error field="candidate_parent_limit" />
                <label for="filter_parent_limit">"Parents considered per decision (10–1000)"</label>
                <input id="filter_parent_limit" name="form[filter_parent_limit]" type="number" min="10" max="1000" value=f.filter_parent_limit required />
                <FieldError error field="filter_parent_limit" />
                <label for="job_rate_limit">"Jobs per second"</label>
                <input id="job_rate_limit" name="form[job_rate_limit]" type="number" min="1" value=f.job_rate_limit required />
                <FieldError error field="job_rate_limit" />
                <label for="seed_peer_load_limit">"Seed peer load limit (concurrent uploads)"</label>
                <input id="seed_peer_load_limit" name="form[seed_peer_load_limit]" type="number" min="1" max="50000" value=f.seed_peer_load_limit required />
                <FieldError error field="seed_peer_load_limit" />
                <label for="peer_load_limit">"Peer load limit (concurrent uploads)"</label>
                <input id="peer_load_limit" name="form[peer_load_limit]" type="number" min="1" max="50000" value=f.peer_load_limit required />
                <FieldError error field="peer_load_limit" />
            </fieldset>
            <fieldset>
                <legend>"Block lists (downloads refused in this cluster)"</legend>
                <label for="block_urls">"URL patterns (regular expressions), one per line"</label>
                <textarea id="block_urls" name="form[block_urls]" rows="3">{f.block_urls}</textarea>
                <FieldError error field="block_urls" />
                <label for="block_applications">"Applications, one per line"</label>
                <textarea id="block_applications" name="form[block_applications]" rows="2">{f.block_applications}</textarea>
                <FieldError error field="block_applications" />
                <label for="block_tags">"Tags, one per line"</label>
                <textarea id="block_tags" name="form[block_tags]" rows="2">{f.block_tags}</textarea>
                <FieldError error field="block_tags" />
            </fieldset>
            <FormError error fields=FIELDS />
            <div class="actions">
                <button type="submit" disabled=move || action.pending().get()>
                    {if id.is_some() { "Save changes" } else { "Create cluster" }}
                </button>
                <A href=cancel attr:class="button secondary">"Cancel"</A>
            </div>
        </ActionForm>
    }
}

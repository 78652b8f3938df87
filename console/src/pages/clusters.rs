//! The clusters list: name filter in the URL, pages, state of each cluster's schedulers.

use leptos::prelude::*;
use leptos_router::components::{A, Form};

use crate::{
    api::clusters::list_clusters,
    components::{ErrorNote, Loading, Pager, query, query_page},
    context::use_me,
};

#[component]
pub fn ClustersPage() -> impl IntoView {
    let me = use_me();
    let page = query_page();
    let name = query("name");
    let clusters = Resource::new(move || (page.get(), name.get()), |(p, n)| list_clusters(p, n));
    let can_create = me.is_root() || me.tenants.iter().any(|m| m.role == common::api::Role::Admin);
    view! {
        <section class="card" aria-labelledby="clusters-title">
            <div class="heading">
                <h1 id="clusters-title">"Clusters"</h1>
                {can_create.then(|| view! { <A href="/clusters/new" attr:class="button">"New cluster"</A> })}
            </div>
            <Form method="GET" action="" attr:class="filters">
                <label for="filter-name">"Name"</label>
                <input id="filter-name" type="search" name="name" value=name placeholder="exact name" />
                <button type="submit" class="secondary">"Filter"</button>
            </Form>
            <Suspense fallback=Loading>
                {move || clusters.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">
                            {if name.get_untracked().is_empty() {
                                "No clusters yet. Create one to group schedulers and seed peers."
                            } else {
                                "No cluster has that name."
                            }}
                        </p>
                    }.into_any(),
                    Ok(mut page) => {
                        let me = use_me();
                        let rows = std::mem::take(&mut page.items).into_iter().map(|c| {
                            let href = format!("/clusters/{}", c.id);
                            let name = c.name.clone();
                            let scopes = [c.scopes.idc.clone(), c.scopes.location.clone()]
                                .into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · ");
                            view! {
                                <tr>
                                    <td><A href=href>{name}</A>
                                        {c.is_default.then(|| view! { " " <span class="badge">"default"</span> })}</td>
                                    <td>{me.tenant_name(c.tenant_id)}</td>
                                    <td>{scopes}</td>
                                    <td class="num">{c.scheduler_cluster_config.candidate_parent_limit}</td>
                                    <td class="num">{c.peer_cluster_config.load_limit}</td>
                                    <td>{c.bio}</td>
                                </tr>
                            }
                        }).collect_view();
                        view! {
                            <table id="clusters-table">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Tenant"</th>
                                    <th scope="col">"IDC · location"</th><th scope="col">"Candidate parents"</th>
                                    <th scope="col">"Peer load limit"</th><th scope="col">"Description"</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                            <Pager page noun="clusters" />
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

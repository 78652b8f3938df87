//! The audit log: who did what, when, and whether it worked; filters in the URL, pages of 50.
//! Tenant admins see their tenants' entries, platform roots everything (the API decides).

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_router::components::{A, Form};

use crate::{
    api::{
        audits::{AuditFilter, list_audits},
        tenants::all_tenants,
    },
    components::{ErrorNote, Loading, Pager, StateBadge, query, query_page, with_query},
};
use common::api::{Tenant, short_time};

/// The tenant filter: the tenants the user can see, by name.
#[component]
fn TenantSelect(tenants: Vec<Tenant>, selected: Memo<String>) -> impl IntoView {
    view! {
        <select id="filter-tenant" name="tenant_id">
            <option value="" selected=move || selected.get().is_empty()>"any tenant"</option>
            {tenants.into_iter().map(|t| {
                let value = t.id.to_string();
                let this = value.clone();
                view! { <option value=value selected=move || selected.get() == this>{t.name}</option> }
            }).collect_view()}
        </select>
    }
}

const STATES: &[(&str, &str)] = &[("", "any outcome"), ("success", "success"), ("failure", "failure")];

#[component]
pub fn AuditPage() -> impl IntoView {
    let page = query_page();
    let (actor, event, state, tenant) = (query("actor_name"), query("event"), query("state"), query("tenant_id"));
    let filter = Memo::new(move |_| AuditFilter {
        actor_name: actor.get(),
        event: event.get(),
        state: state.get(),
        tenant_id: tenant.get(),
    });
    let audits = Resource::new(move || (page.get(), filter.get()), |(p, f)| list_audits(p, f));
    let tenants = Resource::new(|| (), |_| all_tenants());
    view! {
        <section class="card" aria-labelledby="audit-title">
            <h1 id="audit-title">"Audit log"</h1>
            <p class="muted">"Every change made through the API or this console, and every sign-in, newest first."</p>
            <Form method="GET" action="" attr:class="filters" attr:id="audit-filters">
                <label for="filter-actor">"Actor"</label>
                <input id="filter-actor" type="search" name="actor_name" value=actor placeholder="user or token name" />
                <label for="filter-event">"Event"</label>
                <input id="filter-event" type="search" name="event" value=event placeholder="clusters.create" />
                <label for="filter-state">"Outcome"</label>
                <select id="filter-state" name="state">
                    {STATES.iter().map(|(v, l)| view! { <option value=*v selected=move || state.get() == *v>{*l}</option> }).collect_view()}
                </select>
                <label for="filter-tenant">"Tenant"</label>
                <Suspense fallback=move || view! { <TenantSelect tenants=Vec::new() selected=tenant /> }>
                    {move || tenants.get().map(|r| view! { <TenantSelect tenants=r.unwrap_or_default() selected=tenant /> })}
                </Suspense>
                <button type="submit" class="secondary">"Filter"</button>
                {move || (filter.get() != AuditFilter::default()).then(|| view! { <A href="/audit">"Clear"</A> })}
            </Form>
            <Suspense fallback=Loading>
                {move || audits.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">
                            {if filter.get_untracked() == AuditFilter::default() {
                                "Nothing recorded yet. Changes to clusters, members, jobs or tokens appear here."
                            } else {
                                "No entry matches these filters. Clear them to see the whole log."
                            }}
                        </p>
                    }.into_any(),
                    Ok(mut page) => {
                        let names: HashMap<i64, String> = tenants.get().and_then(Result::ok).unwrap_or_default()
                            .into_iter().map(|t| (t.id, t.name)).collect();
                        let rows = std::mem::take(&mut page.items).into_iter().map(|a| {
                            let tenant = a.tenant_id.map(|id| names.get(&id).cloned().unwrap_or_else(|| format!("tenant {id}")));
                            let by_actor = with_query("actor_name", &a.actor_name);
                            let by_event = with_query("event", &a.event);
                            let (actor_name, event) = (a.actor_name.clone(), a.event.clone());
                            view! {
                                <tr data-event=a.event.clone()>
                                    <td>{short_time(&a.created_at)}</td>
                                    <td><A href=by_actor>{actor_name}</A><br /><span class="muted">{a.actor_type.replace('_', " ")}</span></td>
                                    <td><A href=by_event>{event}</A></td>
                                    <td class="wrap"><code>{format!("{} {}", a.operation, a.path)}</code></td>
                                    <td class="num">{a.status_code}</td>
                                    <td><StateBadge state=a.state.clone() /></td>
                                    <td>{tenant.unwrap_or_else(|| "—".into())}</td>
                                </tr>
                            }
                        }).collect_view();
                        view! {
                            <table id="audit-table">
                                <thead><tr>
                                    <th scope="col">"When (UTC)"</th><th scope="col">"Actor"</th><th scope="col">"Event"</th>
                                    <th scope="col">"Request"</th><th scope="col">"Status"</th><th scope="col">"Outcome"</th>
                                    <th scope="col">"Tenant"</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                            <Pager page noun="entries" />
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

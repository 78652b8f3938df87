//! Platform users (platform administrators only; others get the API's 403): filter by name and
//! state, enable or disable a user, make or unmake a platform root.

use leptos::prelude::*;
use leptos_router::components::Form;

use crate::{
    api::users::{SetPlatformRole, SetUserState, list_users},
    components::{ErrorNote, FormError, Loading, Pager, StateBadge, query, query_page},
    context::use_me,
};
use common::api::short_time;

const STATES: &[(&str, &str)] = &[("", "any state"), ("enabled", "enabled"), ("disabled", "disabled")];

#[component]
pub fn UsersPage() -> impl IntoView {
    let my_id = use_me().user.id;
    let page = query_page();
    let (name, state) = (query("name"), query("state"));
    let set_state = ServerAction::<SetUserState>::new();
    let set_role = ServerAction::<SetPlatformRole>::new();
    let users = Resource::new(
        move || (page.get(), name.get(), state.get(), set_state.version().get(), set_role.version().get()),
        |(p, n, s, _, _)| list_users(p, n, s),
    );
    let state_error = Signal::derive(move || set_state.value().get().and_then(Result::err));
    let role_error = Signal::derive(move || set_role.value().get().and_then(Result::err));
    view! {
        <section class="card" aria-labelledby="users-title">
            <h1 id="users-title">"Users"</h1>
            <p class="muted">
                "Everyone with an account on this manager. Disabling a user ends its sessions at once; "
                "a platform root may do everything, in every tenant."
            </p>
            <Form method="GET" action="" attr:class="filters">
                <label for="filter-name">"Name"</label>
                <input id="filter-name" type="search" name="name" value=name placeholder="exact name" />
                <label for="filter-state">"State"</label>
                <select id="filter-state" name="state">
                    {STATES.iter().map(|(v, l)| view! { <option value=*v selected=move || state.get() == *v>{*l}</option> }).collect_view()}
                </select>
                <button type="submit" class="secondary">"Filter"</button>
            </Form>
            <FormError error=state_error fields=&[] />
            <FormError error=role_error fields=&[] />
            <Suspense fallback=Loading>
                {move || users.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">"No user matches these filters. Clear them to see everyone."</p>
                    }.into_any(),
                    Ok(mut page) => view! {
                        <table id="users-table">
                            <thead><tr>
                                <th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"State"</th>
                                <th scope="col">"Platform role"</th><th scope="col">"Created"</th><th scope="col">"Actions"</th>
                            </tr></thead>
                            <tbody>
                                {std::mem::take(&mut page.items).into_iter().map(|u| {
                                    let enabled = u.state == "enabled";
                                    let root = u.platform_role == "root";
                                    let actions = if u.id == my_id {
                                        view! { <span class="muted">"you"</span> }.into_any()
                                    } else { view! {
                                        <ActionForm action=set_state attr:class="inline">
                                            <input type="hidden" name="id" value=u.id />
                                            <input type="hidden" name="state" value=if enabled { "disabled" } else { "enabled" } />
                                            <button type="submit" class=if enabled { "link-button danger" } else { "link-button" }>
                                                {if enabled { "Disable" } else { "Enable" }}
                                            </button>
                                        </ActionForm>
                                        " · "
                                        <ActionForm
                                            action=set_role
                                            attr:class="inline"
                                            // Constant attributes (re-rendered rows keep them right): ask only when granting root.
                                            attr:data-confirm="Make this user a platform root? Roots may do everything, in every tenant."
                                            attr:data-confirm-when="input[name=role][value=root]"
                                        >
                                            <input type="hidden" name="id" value=u.id />
                                            <input type="hidden" name="role" value=if root { "" } else { "root" } />
                                            <button type="submit" class="link-button">{if root { "Remove root" } else { "Make root" }}</button>
                                        </ActionForm>
                                    }.into_any() };
                                    view! {
                                        <tr data-user=u.name.clone()>
                                            <td>{u.name.clone()}</td>
                                            <td>{u.email.clone().unwrap_or_else(|| "—".into())}</td>
                                            <td class="user-state"><StateBadge state=u.state.clone() /></td>
                                            <td class="user-role">{if root { "root" } else { "—" }}</td>
                                            <td>{short_time(&u.created_at)}</td>
                                            <td>{actions}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <Pager page noun="users" />
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

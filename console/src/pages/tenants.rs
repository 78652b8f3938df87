//! Tenants: the list of those the user can see and creating one; one tenant with its settings,
//! its members and their roles, and (for platform roots) deleting it.
//!
//! Who administers a tenant is read from its member list, not from the signed-in user loaded
//! with the layout: a tenant created a moment ago is not in that one yet.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use crate::{
    api::{
        ApiError,
        tenants::{
            AddMember, ChangeMemberRole, CreateTenant, DeleteTenant, RemoveMember, TENANT_ROLES, UpdateTenant,
            get_tenant, list_members, list_tenants,
        },
    },
    components::{ErrorNote, FieldError, FormError, Loading, Pager, query_page},
    context::use_me,
};
use common::api::{Member, Tenant, short_time};

#[component]
pub fn TenantsPage() -> impl IntoView {
    let page = query_page();
    let create = ServerAction::<CreateTenant>::new();
    let tenants = Resource::new(move || (page.get(), create.version().get()), |(p, _)| list_tenants(p));
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    view! {
        <section class="card" aria-labelledby="tenants-title">
            <h1 id="tenants-title">"Tenants"</h1>
            <p class="muted">
                "A tenant owns clusters, jobs and tokens; its members see them, with the role they have there."
            </p>
            <Suspense fallback=Loading>
                {move || tenants.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">
                            "You belong to no tenant yet. Create one below, or ask a tenant admin to add you."
                        </p>
                    }.into_any(),
                    Ok(mut page) => {
                        let me = use_me();
                        let rows = std::mem::take(&mut page.items).into_iter().map(|t| {
                            let role = me.tenants.iter().find(|m| m.tenant_id == t.id).map(|m| m.role.as_str().to_owned())
                                .unwrap_or_else(|| if me.is_root() { "— (platform root)".into() } else { "—".into() });
                            let name = t.name.clone();
                            view! {
                                <tr data-tenant=t.name.clone()>
                                    <td><A href=format!("/tenants/{}", t.id)>{name}</A></td>
                                    <td>{t.bio.clone()}</td>
                                    <td>{role}</td>
                                    <td>{short_time(&t.created_at)}</td>
                                </tr>
                            }
                        }).collect_view();
                        view! {
                            <table id="tenants-table">
                                <thead><tr>
                                    <th scope="col">"Name"</th><th scope="col">"Description"</th>
                                    <th scope="col">"Your role"</th><th scope="col">"Created"</th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                            <Pager page noun="tenants" />
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
        <section class="card" aria-labelledby="new-tenant-title">
            <h2 id="new-tenant-title">"New tenant"</h2>
            <p class="muted">"You become its admin, and can then add members."</p>
            <ActionForm action=create attr:class="form-grid" attr:id="tenant-form">
                <label for="tenant-name">"Name"</label>
                <input id="tenant-name" name="name" required maxlength="256" />
                <FieldError error field="name" />
                <label for="tenant-bio">"Description"</label>
                <input id="tenant-bio" name="bio" maxlength="1024" />
                <FieldError error field="bio" />
                <FormError error fields=&["name", "bio"] />
                <div class="actions">
                    <button type="submit" id="create-tenant" disabled=move || create.pending().get()>"Create tenant"</button>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn TenantPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));
    view! {
        {move || match id() {
            Some(id) => view! { <TenantView id /> }.into_any(),
            None => {
                let error = ApiError::not_found("no such tenant");
                view! { <section class="card"><ErrorNote error /></section> }.into_any()
            }
        }}
    }
}

#[component]
fn TenantView(id: i64) -> impl IntoView {
    let me = use_me();
    let (root, my_id) = (me.is_root(), me.user.id);
    let update = ServerAction::<UpdateTenant>::new();
    let delete = ServerAction::<DeleteTenant>::new();
    let add = ServerAction::<AddMember>::new();
    let change = ServerAction::<ChangeMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let tenant = Resource::new(move || update.version().get(), move |_| get_tenant(id));
    let members = Resource::new(
        move || (add.version().get(), change.version().get(), remove.version().get()),
        move |_| list_members(id),
    );
    // Read only inside the Suspense below, so server rendering waits for the members.
    let admin = Signal::derive(move || {
        root || members
            .get()
            .and_then(Result::ok)
            .is_some_and(|p| p.items.iter().any(|m| m.user_id == my_id && m.role == common::api::Role::Admin))
    });
    let update_error = Signal::derive(move || update.value().get().and_then(Result::err));
    let saved = move || update.value().get().is_some_and(|r| r.is_ok());
    let delete_error = Signal::derive(move || delete.value().get().and_then(Result::err));
    Effect::new(move || {
        if delete.value().get().is_some_and(|r| r.is_ok()) {
            let _ = window().location().set_href("/tenants");
        }
    });
    let add_error = Signal::derive(move || add.value().get().and_then(Result::err));
    let added = move || add.value().get().and_then(Result::ok);
    let member_error = Signal::derive(move || {
        change.value().get().and_then(Result::err).or_else(|| remove.value().get().and_then(Result::err))
    });
    view! {
        <Suspense fallback=Loading>
            {move || tenant.get().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(t) => {
                    let editable = t.clone();
                    view! {
                    <section class="card" aria-labelledby="tenant-title">
                        <div class="heading">
                            <h1 id="tenant-title">{t.name.clone()}</h1>
                            {root.then(|| view! {
                                <ActionForm action=delete attr:class="inline" attr:data-confirm="Delete this tenant? Its members lose access; it must have no clusters left.">
                                    <input type="hidden" name="id" value=id />
                                    <button type="submit" class="danger" id="delete-tenant">"Delete tenant"</button>
                                </ActionForm>
                            })}
                        </div>
                        <FormError error=delete_error fields=&[] />
                        <p class="muted">{if t.bio.is_empty() { "No description.".to_owned() } else { t.bio.clone() }}</p>
                        <dl class="facts">
                            <dt>"Id"</dt><dd id="tenant-id">{t.id}</dd>
                            <dt>"Created"</dt><dd>{short_time(&t.created_at)}</dd>
                        </dl>
                        {move || admin.get().then(|| view! { <TenantForm tenant=editable.clone() update error=update_error /> })}
                        {move || saved().then(|| view! { <p class="notice" role="status">"Saved."</p> })}
                    </section>
                }.into_any()
                }

            })}
        </Suspense>
        <section class="card" aria-labelledby="members-title">
            <h2 id="members-title">"Members"</h2>
            <FormError error=member_error fields=&[] />
            <Suspense fallback=Loading>
                {move || members.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! {
                        <p class="empty">"This tenant has no members. A platform root can add one below."</p>
                    }.into_any(),
                    Ok(mut page) => {
                        let admin = admin.get();
                        let rows = std::mem::take(&mut page.items).into_iter()
                            .map(|m| view! { <MemberRow tenant_id=id member=m admin change remove /> })
                            .collect_view();
                        view! {
                            <table id="members-table">
                                <thead><tr>
                                    <th scope="col">"User"</th><th scope="col">"Role"</th>
                                    <th scope="col">"Member since"</th><th scope="col"></th>
                                </tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                        }.into_any()
                    }
                })}
                {move || admin.get().then(|| view! {
                    <h3 id="add-member-title">"Add a member"</h3>
                    <ActionForm action=add attr:class="form-grid" attr:id="add-member-form" attr:aria-labelledby="add-member-title">
                        <input type="hidden" name="tenant_id" value=id />
                        <label for="member-name">"User name"</label>
                        <input id="member-name" name="user_name" required autocomplete="off" />
                        <FieldError error=add_error field="user_name" />
                        <label for="member-role">"Role"</label>
                        <select id="member-role" name="role">
                            {TENANT_ROLES.iter().map(|r| view! { <option value=*r selected=*r == "member">{*r}</option> }).collect_view()}
                        </select>
                        <FieldError error=add_error field="role" />
                        <FormError error=add_error fields=&["user_name", "role"] />
                        <div class="actions">
                            <button type="submit" id="add-member" disabled=move || add.pending().get()>"Add member"</button>
                        </div>
                    </ActionForm>
                    {move || added().map(|m| view! {
                        <p class="notice" role="status">{format!("{} added as {}.", m.user_name, m.role.as_str())}</p>
                    })}
                })}
            </Suspense>
        </section>
    }
}

/// Renaming a tenant and changing its description (tenant admins).
#[component]
fn TenantForm(tenant: Tenant, update: ServerAction<UpdateTenant>, error: Signal<Option<ApiError>>) -> impl IntoView {
    view! {
        <ActionForm action=update attr:class="form-grid" attr:id="tenant-edit-form">
            <input type="hidden" name="id" value=tenant.id />
            <label for="edit-tenant-name">"Name"</label>
            <input id="edit-tenant-name" name="name" required maxlength="256" value=tenant.name />
            <FieldError error field="name" />
            <label for="edit-tenant-bio">"Description"</label>
            <input id="edit-tenant-bio" name="bio" maxlength="1024" value=tenant.bio />
            <FieldError error field="bio" />
            <FormError error fields=&["name", "bio"] />
            <div class="actions">
                <button type="submit" id="save-tenant" disabled=move || update.pending().get()>"Save"</button>
            </div>
        </ActionForm>
    }
}

/// One member: its role as a select with a button to change it, and removal (tenant admins).
#[component]
fn MemberRow(
    tenant_id: i64,
    member: Member,
    admin: bool,
    change: ServerAction<ChangeMemberRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let m = member;
    let select_id = format!("role-{}", m.user_id);
    let role = m.role.as_str();
    let role_label = format!("Role of {}", m.user_name);
    let user_id = m.user_id;
    let confirm = format!("Remove {} from this tenant?", m.user_name);
    view! {
        <tr data-member=m.user_name.clone()>
            <td>{m.user_name.clone()}</td>
            <td class="member-role">
                {if admin {
                    view! {
                        <ActionForm action=change attr:class="inline row-form">
                            <input type="hidden" name="tenant_id" value=tenant_id />
                            <input type="hidden" name="user_id" value=user_id />
                            <label for=select_id.clone() class="visually-hidden">{role_label}</label>
                            <select id=select_id name="role">
                                {TENANT_ROLES.iter().map(|r| view! { <option value=*r selected=*r == role>{*r}</option> }).collect_view()}
                            </select>
                            <button type="submit" class="secondary">"Change"</button>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! { <span>{m.role.as_str()}</span> }.into_any()
                }}
            </td>
            <td>{short_time(&m.created_at)}</td>
            <td>{admin.then(|| view! {
                <ActionForm action=remove attr:class="inline" attr:data-confirm=confirm>
                    <input type="hidden" name="tenant_id" value=tenant_id />
                    <input type="hidden" name="user_id" value=user_id />
                    <button type="submit" class="link-button danger">"Remove"</button>
                </ActionForm>
            })}</td>
        </tr>
    }
}

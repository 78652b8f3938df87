//! Roles and their permissions as a matrix: one row per object, four columns (read, create,
//! update, delete) per role. The policy is the manager's; this page only draws it.

use leptos::prelude::*;

use crate::{
    api::roles::list_roles,
    components::{ErrorNote, Loading},
};
use common::api::RoleInfo;

const ACTIONS: &[&str] = &["read", "create", "update", "delete"];

/// The objects the roles name, in the order the policy first names them; `*` (every object)
/// comes last, as "every other object".
fn objects(roles: &[RoleInfo]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in roles.iter().flat_map(|r| &r.permissions) {
        if p.object != "*" && !out.contains(&p.object) {
            out.push(p.object.clone());
        }
    }
    if roles.iter().flat_map(|r| &r.permissions).any(|p| p.object == "*") {
        out.push("*".into());
    }
    out
}

/// Whether `role` may `action` on `object`, `*` in a permission matching anything.
fn allows(role: &RoleInfo, object: &str, action: &str) -> bool {
    role.permissions.iter().any(|p| (p.object == "*" || p.object == object) && (p.action == "*" || p.action == action))
}

fn describe(role: &str) -> &'static str {
    match role {
        "root" => "platform administrator: everything, in every tenant",
        "user" => "anyone signed in, outside any tenant",
        "admin" => "manages a tenant: its clusters, members, jobs and tokens",
        "member" => "reads a tenant and runs jobs in it",
        "guest" => "reads a tenant",
        _ => "",
    }
}

#[component]
pub fn RolesPage() -> impl IntoView {
    let roles = Resource::new(|| (), |_| list_roles());
    view! {
        <section class="card" aria-labelledby="roles-title">
            <h1 id="roles-title">"Roles"</h1>
            <p class="muted">
                "What each role may do. Platform roles apply everywhere; tenant roles apply in the tenant "
                "a member has them in. The manager enforces this on every API call, the console included."
            </p>
            <Suspense fallback=Loading>
                {move || roles.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(roles) if roles.is_empty() => view! { <p class="empty">"The manager lists no roles."</p> }.into_any(),
                    Ok(roles) => view! { <Matrix roles /> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Matrix(roles: Vec<RoleInfo>) -> impl IntoView {
    let objects = objects(&roles);
    let legend = roles
        .iter()
        .map(|r| {
            view! {
                <dt>{r.name.clone()} " " <span class="badge">{r.scope.clone()}</span></dt>
                <dd>{describe(&r.name)}</dd>
            }
        })
        .collect_view();
    let head = roles
        .iter()
        .map(|r| view! { <th scope="colgroup" colspan="4" class="role-head">{r.name.clone()}</th> })
        .collect_view();
    let sub = roles
        .iter()
        .flat_map(|_| ACTIONS)
        .map(|a| view! { <th scope="col" class="perm"><abbr title=*a>{a[..1].to_uppercase()}</abbr></th> })
        .collect_view();
    let rows = objects
        .iter()
        .map(|o| {
            let label = if o == "*" { "every other object".to_owned() } else { o.clone() };
            let cells = roles
                .iter()
                .flat_map(|r| ACTIONS.iter().map(move |a| (r, *a)))
                .map(|(r, a)| {
                    let yes = allows(r, o, a);
                    let text = format!("{} {} {a} {label}", r.name, if yes { "may" } else { "may not" });
                    let tip = text.clone();
                    view! {
                        <td class=if yes { "perm yes" } else { "perm no" } data-role=r.name.clone() data-action=a title=tip>
                            {yes.then_some("✓")}
                            <span class="visually-hidden">{text}</span>
                        </td>
                    }
                })
                .collect_view();
            view! { <tr data-object=o.clone()><th scope="row">{label}</th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <dl class="facts" id="roles-legend">{legend}</dl>
        <div class="scroll">
            <table id="roles-table" class="matrix">
                <thead>
                    <tr><th scope="col" rowspan="2">"Object"</th>{head}</tr>
                    <tr>{sub}</tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <p class="muted">"R read · C create · U update · D delete."</p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::api::Permission;

    fn role(name: &str, perms: &[(&str, &str)]) -> RoleInfo {
        RoleInfo {
            name: name.into(),
            scope: "tenant".into(),
            permissions: perms.iter().map(|(o, a)| Permission { object: (*o).into(), action: (*a).into() }).collect(),
        }
    }

    #[test]
    fn wildcards_match_every_object_and_action() {
        let root = role("root", &[("*", "*")]);
        let admin = role("admin", &[("clusters", "*"), ("tenants", "read")]);
        assert!(allows(&root, "users", "delete"));
        assert!(allows(&admin, "clusters", "delete"));
        assert!(allows(&admin, "tenants", "read"));
        assert!(!allows(&admin, "tenants", "delete"));
        assert!(!allows(&admin, "users", "read"));
    }

    #[test]
    fn objects_keep_policy_order_with_the_wildcard_last() {
        let roles = [
            role("root", &[("*", "*")]),
            role("admin", &[("tenants", "read"), ("clusters", "*"), ("tenants", "update")]),
        ];
        assert_eq!(objects(&roles), vec!["tenants", "clusters", "*"]);
        assert!(objects(&[]).is_empty());
    }
}

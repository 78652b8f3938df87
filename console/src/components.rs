//! Pieces every page uses: error notes (that send signed-out visitors to sign in), field
//! messages, the pager, state badges, and query-string helpers that keep filters in the URL.

use leptos::prelude::*;
use leptos_router::{
    components::{A, Redirect},
    hooks::{use_location, use_query_map},
};

use crate::api::ApiError;
use crate::api::page::Page;

/// Where to sign in and come back to the current page afterwards.
pub fn signin_path() -> String {
    let location = use_location();
    let here = format!("{}{}", location.pathname.get_untracked(), location.search.get_untracked());
    let here = if here.is_empty() { "/".to_owned() } else { here };
    format!("/signin?return_to={}", encode(&here))
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query parameter of the current URL ("" when absent).
pub fn query(name: &'static str) -> Memo<String> {
    let map = use_query_map();
    Memo::new(move |_| map.with(|m| m.get(name).unwrap_or_default()))
}

/// `?page=` of the current URL, from 1.
pub fn query_page() -> Memo<u64> {
    let map = use_query_map();
    Memo::new(move |_| map.with(|m| m.get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1)))
}

/// The current URL with `key` set to `value` (removed when empty), for links that keep the other
/// filters. Changing a filter goes back to page 1.
pub fn with_query(key: &str, value: &str) -> String {
    let location = use_location();
    let mut map = use_query_map().get_untracked();
    map.remove(key);
    if key != "page" {
        map.remove("page");
    }
    if !value.is_empty() {
        map.insert(key.to_owned(), value.to_owned());
    }
    format!("{}{}", location.pathname.get_untracked(), map.to_query_string())
}

/// An API error as a sentence people can act on; a lost session sends the visitor to sign in.
#[component]
pub fn ErrorNote(error: ApiError) -> impl IntoView {
    if error.is_signed_out() {
        return view! { <Redirect path=signin_path() /> }.into_any();
    }
    #[cfg(feature = "ssr")]
    if let Ok(status) = http::StatusCode::from_u16(error.status) {
        crate::api::client::set_status(status);
    }
    let hint = match error.status {
        0 => " Check that the manager is running, then reload.",
        403 => " Ask an administrator of this tenant for the role you need.",
        404 => " It may have been deleted, or belong to a tenant you are not in.",
        _ => "",
    };
    view! {
        <p class="error" role="alert">
            {error.message} "." {hint}
        </p>
    }
    .into_any()
}

/// The message for `field` from the last submission, if it named that field.
#[component]
pub fn FieldError(#[prop(into)] error: Signal<Option<ApiError>>, field: &'static str) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.for_field(field)).map(|m| {
            view! {
                <span class="field-error" role="alert" data-field=field>
                    {m}
                </span>
            }
        })
    }
}

/// The form-wide message of the last submission, when it named no field of the form.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<ApiError>>, fields: &'static [&'static str]) -> impl IntoView {
    move || {
        error.get().filter(|e| e.field.as_deref().is_none_or(|f| !fields.contains(&f))).map(|e| {
            if e.is_signed_out() {
                view! { <Redirect path=signin_path() /> }.into_any()
            } else {
                view! {
                    <p class="error" role="alert">
                        {e.message}
                    </p>
                }
                .into_any()
            }
        })
    }
}

/// "Page 2 of 7 · 130 items" with previous / next links that keep the other query parameters.
#[component]
pub fn Pager<T: Send + Sync + 'static>(page: Page<T>, noun: &'static str) -> impl IntoView {
    let pages = page.pages();
    let current = page.page.min(pages);
    let prev = (current > 1).then(|| with_query("page", &(current - 1).to_string()));
    let next = (current < pages).then(|| with_query("page", &(current + 1).to_string()));
    view! {
        <nav class="pager" aria-label="Pages">
            {prev.map(|href| view! { <A href=href attr:rel="prev">"← Previous"</A> })}
            <span class="muted">
                {format!("Page {current} of {pages} · {} {noun}", page.total)}
            </span>
            {next.map(|href| view! { <A href=href attr:rel="next">"Next →"</A> })}
        </nav>
    }
}

/// `active` / `inactive` (and job states) as a colored badge.
#[component]
pub fn StateBadge(state: String) -> impl IntoView {
    let class = match state.as_str() {
        "active" | "SUCCESS" | "success" | "succeeded" | "enabled" => "badge ok",
        "PENDING" | "RUNNING" | "pending" | "running" | "back_to_source" => "badge warn",
        "inactive" | "disabled" | "deleted" => "badge muted-badge",
        _ => "badge bad",
    };
    view! { <span class=class>{state}</span> }
}

/// What a list shows while it loads.
#[component]
pub fn Loading() -> impl IntoView {
    view! {
        <p class="muted" aria-busy="true">
            "Loading…"
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("/clusters?page=2&name=a b"), "/clusters%3Fpage%3D2%26name%3Da%20b");
    }
}

/// A `<select>` of clusters by name, its value the cluster id. With `any`, an empty first choice
/// so labelled (all clusters); without, one cluster must be chosen. `selected` is the chosen
/// id as text.
#[component]
pub fn ClusterSelect(
    id: &'static str,
    name: &'static str,
    clusters: Vec<common::api::Cluster>,
    #[prop(into)] selected: Signal<String>,
    #[prop(optional)] any: Option<&'static str>,
) -> impl IntoView {
    view! {
        <select id=id name=name>
            {any.map(|label| view! { <option value="" selected=move || selected.get().is_empty()>{label}</option> })}
            {clusters.into_iter().map(|c| {
                let value = c.id.to_string();
                let this = value.clone();
                view! { <option value=value selected=move || selected.get() == this>{c.name}</option> }
            }).collect_view()}
        </select>
    }
}

//! The HTML shell, the layout every signed-in page shares, and the router.
//!
//! Public pages (sign in, sign up, status) stand alone. Every other page is a child of
//! [`Shell`], which loads the signed-in user once and provides it as context, so pages can hide
//! what the user may not do. Hiding is courtesy only: the API decides.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{A, Outlet, ParentRoute, Route, Router, Routes},
};

use crate::{
    api::auth::{SignOut, current_user},
    components::ErrorNote,
    context::provide_me,
    pages::{
        audit::AuditPage,
        cluster_detail::ClusterDetailPage,
        cluster_form::{EditClusterPage, NewClusterPage},
        clusters::ClustersPage,
        jobs::{JobPage, JobsPage},
        overview::OverviewPage,
        peers::PeersPage,
        preheat::PreheatPage,
        profile::ProfilePage,
        roles::RolesPage,
        signin::{SignInPage, SignUpPage},
        status::StatusPage,
        task_clear::TaskClearPage,
        task_graph::TaskGraphPage,
        tenants::{TenantPage, TenantsPage},
        tokens::TokensPage,
        topology::TopologyPage,
        users::UsersPage,
    },
};
use common::api::{Me, Role};

/// The document around the app: head, hydration scripts, body.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    script_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <script src="/pkg/confirm.js" defer></script>
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Scripts run only from this origin or inline with this response's nonce (the server render
/// hands hydration its data in inline scripts, each carrying the nonce leptos_axum made for the
/// request), and WebAssembly may compile; so an injected `<script>` never runs.
#[cfg(feature = "ssr")]
fn script_policy() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let policy = format!(
        "script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The console application: layout and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: tests and styles can rely on this mark.
    Effect::new(|| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="damselfly" href="/pkg/console.css" />
        <Title text="Damselfly console" />
        <Router>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=StaticSegment("signin") view=SignInPage ssr=SsrMode::Async />
                <Route path=StaticSegment("signup") view=SignUpPage ssr=SsrMode::Async />
                <Route path=StaticSegment("status") view=StatusPage ssr=SsrMode::Async />
                <ParentRoute path=StaticSegment("") view=Shell ssr=SsrMode::Async>
                    <Route path=StaticSegment("") view=OverviewPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("clusters") view=ClustersPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("clusters"), StaticSegment("new")) view=NewClusterPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("clusters"), ParamSegment("id")) view=ClusterDetailPage ssr=SsrMode::Async />
                    <Route
                        path=(StaticSegment("clusters"), ParamSegment("id"), StaticSegment("edit"))
                        view=EditClusterPage
                        ssr=SsrMode::Async
                    />
                    <Route path=StaticSegment("topology") view=TopologyPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("tasks") view=TaskGraphPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("jobs") view=JobsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("jobs"), StaticSegment("task-clear")) view=TaskClearPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("jobs"), StaticSegment("preheat")) view=PreheatPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("jobs"), ParamSegment("id")) view=JobPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("tokens") view=TokensPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("profile") view=ProfilePage ssr=SsrMode::Async />
                    <Route path=StaticSegment("users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("tenants") view=TenantsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("tenants"), ParamSegment("id")) view=TenantPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("roles") view=RolesPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("audit") view=AuditPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("peers") view=PeersPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The signed-in layout: top bar with navigation and the user menu, then the page.
#[component]
fn Shell() -> impl IntoView {
    let me = Resource::new(|| (), |_| current_user());
    view! {
        <Suspense fallback=|| view! { <header class="topbar"><span class="brand">"Damselfly"</span></header> }>
            {move || me.get().map(|r| match r {
                Ok(me) => {
                    provide_me(me.clone());
                    view! {
                        <TopBar me />
                        <main class="content">
                            <Outlet />
                        </main>
                    }
                    .into_any()
                }
                Err(error) => view! { <main class="content"><ErrorNote error /></main> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn TopBar(me: Me) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    // In the browser, a finished sign-out reloads at the sign-in page (the cookie is gone).
    Effect::new(move || {
        if sign_out.value().get().is_some_and(|r| r.is_ok()) {
            let _ = window().location().set_href("/signin");
        }
    });
    let admin = me.is_root() || me.tenants.iter().any(|m| m.role == Role::Admin);
    let role = if me.is_root() {
        "platform root".to_owned()
    } else {
        me.tenants.iter().map(|m| format!("{} in {}", m.role.as_str(), m.tenant_name)).collect::<Vec<_>>().join(", ")
    };
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                "Damselfly"
            </A>
            <nav aria-label="Main">
                <A href="/" exact=true>"Overview"</A>
                <A href="/clusters">"Clusters"</A>
                <A href="/topology">"Topology"</A>
                <A href="/jobs">"Jobs"</A>
                <A href="/tasks">"Tasks"</A>
                <A href="/tokens">"Tokens"</A>
                <A href="/peers">"Peers"</A>
                <A href="/tenants">"Tenants"</A>
                <A href="/roles">"Roles"</A>
                {admin.then(|| view! { <A href="/audit">"Audit"</A> })}
                {me.is_root().then(|| view! { <A href="/users">"Users"</A> })}
                {admin.then(|| view! { <span class="muted nav-note">"admin"</span> })}
            </nav>
            <div class="user-menu">
                <A href="/profile" attr:id="whoami" attr:title=role>{me.user.name.clone()}</A>
                <ActionForm action=sign_out>
                    <button type="submit" class="link-button" id="sign-out">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::api::client::set_status(http::StatusCode::NOT_FOUND);
    view! {
        <main class="content">
            <section class="card">
                <h1>"Page not found"</h1>
                <p>"There is no page at this address. " <A href="/">"Go to the overview"</A> "."</p>
            </section>
        </main>
    }
}

//! The HTML shell, the layout every page shares, and the router.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode, StaticSegment,
    components::{A, Route, Router, Routes},
};

use crate::pages::status::StatusPage;

/// The document around the app: head, hydration scripts, body.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
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
            <header class="topbar">
                <A href="/" attr:class="brand">
                    "Damselfly"
                </A>
                <nav>
                    <A href="/">"Status"</A>
                </nav>
            </header>
            <main class="content">
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=StaticSegment("") view=StatusPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. " <A href="/">"Go to the status page"</A> "."</p>
        </section>
    }
}

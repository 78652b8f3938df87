//! Sign in (password and each configured OAuth provider) and sign up.
//!
//! Both forms work before the WASM arrives: they post to their server function, which sets the
//! session cookie and redirects. Once hydrated, errors show next to the fields without a reload.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    api::{
        ApiError,
        auth::{SignIn, SignUp, oauth_providers},
        local_path,
    },
    components::{FieldError, FormError, encode, query},
};

/// A header for pages seen signed out.
#[component]
pub fn PublicHeader() -> impl IntoView {
    view! {
        <header class="topbar">
            <a href="/" class="brand">
                "Damselfly"
            </a>
            <nav aria-label="Main">
                <a href="/status">"Status"</a>
            </nav>
        </header>
    }
}

/// Once a form's server function answers the path to go to, load it in full: the session
/// cookie changed, so every page must be rendered anew.
fn follow(value: Signal<Option<Result<String, ApiError>>>) {
    Effect::new(move || {
        if let Some(Ok(to)) = value.get() {
            let _ = window().location().set_href(&to);
        }
    });
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    follow(Signal::derive(move || action.value().get()));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let return_to = query("return_to");
    let providers = Resource::new(|| (), |_| oauth_providers());
    view! {
        <PublicHeader />
        <main class="content narrow">
            <section class="card" aria-labelledby="signin-title">
                <h1 id="signin-title">"Sign in"</h1>
                <ActionForm action>
                    <input type="hidden" name="return_to" value=move || local_path(Some(&return_to.get())) />
                    <label for="name">"User name"</label>
                    <input id="name" name="name" autocomplete="username" required autofocus />
                    <FieldError error field="name" />
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required />
                    <FieldError error field="password" />
                    <FormError error fields=&["name", "password"] />
                    <div class="actions">
                        <button type="submit" disabled=move || action.pending().get()>
                            "Sign in"
                        </button>
                    </div>
                </ActionForm>
                <Suspense>
                    {move || providers.get().and_then(Result::ok).filter(|p| !p.is_empty()).map(|providers| {
                        let back = encode(&local_path(Some(&return_to.get_untracked())));
                        view! {
                            <div class="oauth" aria-label="Other ways to sign in">
                                <p class="muted">"Or sign in with"</p>
                                {providers.into_iter().map(|p| {
                                    let href = format!("/api/v1/users/signin/{}?return_to={back}", p.name);
                                    view! { <a class="button secondary" href=href rel="external">{p.display_name}</a> }
                                }).collect_view()}
                            </div>
                        }
                    })}
                </Suspense>
                <p class="muted">"No account? " <A href="/signup">"Sign up"</A> " where this manager allows it."</p>
            </section>
        </main>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    follow(Signal::derive(move || action.value().get()));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    view! {
        <PublicHeader />
        <main class="content narrow">
            <section class="card" aria-labelledby="signup-title">
                <h1 id="signup-title">"Sign up"</h1>
                <ActionForm action>
                    <label for="name">"User name"</label>
                    <input id="name" name="name" autocomplete="username" required maxlength="64" />
                    <FieldError error field="name" />
                    <label for="email">"Email (optional)"</label>
                    <input id="email" name="email" type="email" autocomplete="email" />
                    <FieldError error field="email" />
                    <label for="password">"Password (8 characters or more)"</label>
                    <input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" />
                    <FieldError error field="password" />
                    <FormError error fields=&["name", "email", "password"] />
                    <div class="actions">
                        <button type="submit" disabled=move || action.pending().get()>"Create account"</button>
                    </div>
                </ActionForm>
                <p class="muted">"Have an account? " <A href="/signin">"Sign in"</A></p>
            </section>
        </main>
    }
}

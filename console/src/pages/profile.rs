//! The signed-in user's profile: who it is, where it belongs, and changing its password.

use leptos::prelude::*;

use crate::{
    api::auth::ChangePassword,
    components::{FieldError, FormError},
    context::use_me,
};

#[component]
pub fn ProfilePage() -> impl IntoView {
    let me = use_me();
    let action = ServerAction::<ChangePassword>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let done = move || action.value().get().is_some_and(|r| r.is_ok());
    view! {
        <section class="card" aria-labelledby="profile-title">
            <h1 id="profile-title">{me.user.name.clone()}</h1>
            <dl class="facts">
                <dt>"Email"</dt><dd>{me.user.email.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Platform role"</dt><dd>{if me.is_root() { "root" } else { "user" }}</dd>
                <dt>"Tenants"</dt>
                <dd>
                    {if me.tenants.is_empty() { "none yet".to_owned() } else {
                        me.tenants.iter().map(|m| format!("{} ({})", m.tenant_name, m.role.as_str())).collect::<Vec<_>>().join(", ")
                    }}
                </dd>
            </dl>
        </section>
        <section class="card" aria-labelledby="password-title">
            <h2 id="password-title">"Change password"</h2>
            <ActionForm action attr:class="form-grid">
                <label for="old_password">"Current password"</label>
                <input id="old_password" name="old_password" type="password" autocomplete="current-password" required />
                <FieldError error field="old_password" />
                <label for="new_password">"New password (8 characters or more)"</label>
                <input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="8" />
                <FieldError error field="new_password" />
                <label for="repeat">"New password again"</label>
                <input id="repeat" name="repeat" type="password" autocomplete="new-password" required minlength="8" />
                <FieldError error field="repeat" />
                <FormError error fields=&["old_password", "new_password", "repeat"] />
                {move || done().then(|| view! { <p class="notice" role="status">"Password changed."</p> })}
                <div class="actions"><button type="submit" disabled=move || action.pending().get()>"Change password"</button></div>
            </ActionForm>
        </section>
    }
}

//! Personal access tokens: create (shown once, with a copy button), list, revoke.

use leptos::prelude::*;

use crate::{
    api::tokens::{CreateToken, RevokeToken, list_tokens},
    components::{ErrorNote, FieldError, FormError, Loading, Pager, StateBadge, query_page},
    context::use_me,
};
use common::api::short_time;

#[component]
pub fn TokensPage() -> impl IntoView {
    let me = use_me();
    let page = query_page();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens =
        Resource::new(move || (page.get(), create.version().get(), revoke.version().get()), |(p, _, _)| list_tokens(p));
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    let revoke_error = Signal::derive(move || revoke.value().get().and_then(Result::err));
    let created = move || create.value().get().and_then(Result::ok);
    let copied = RwSignal::new(false);
    view! {
        <section class="card" aria-labelledby="new-token-title">
            <h1 id="new-token-title">"Personal access tokens"</h1>
            <p class="muted">
                "Tokens let CI pipelines and tools such as Harbor call " <code>"/oapi/v1"</code>
                " as you, limited to the scopes you choose, until they expire or you revoke them."
            </p>
            <ActionForm action=create attr:class="form-grid" attr:id="token-form">
                <label for="token-name">"Name"</label>
                <input id="token-name" name="name" required maxlength="256" />
                <FieldError error field="name" />
                <label for="token-bio">"Description"</label>
                <input id="token-bio" name="bio" />
                <label for="token-days">"Expires after (days)"</label>
                <input id="token-days" name="days" type="number" min="1" max="3650" value="90" required />
                <FieldError error field="days" />
                {(me.tenants.len() > 1).then(|| view! {
                    <label for="token-tenant">"Tenant"</label>
                    <select id="token-tenant" name="tenant_id">
                        {me.tenants.iter().map(|m| view! { <option value=m.tenant_id>{m.tenant_name.clone()}</option> }).collect_view()}
                    </select>
                })}
                {(me.tenants.len() <= 1).then(|| view! { <input type="hidden" name="tenant_id" value="" /> })}
                <FieldError error field="tenant_id" />
                <fieldset class="checks">
                    <legend>"Scopes"</legend>
                    <label class="check"><input type="checkbox" name="scope_job" checked /> " job (create and read jobs)"</label>
                    <label class="check"><input type="checkbox" name="scope_cluster" /> " cluster (read and manage clusters)"</label>
                </fieldset>
                <FieldError error field="scopes" />
                <FormError error fields=&["name", "days", "tenant_id", "scopes"] />
                <div class="actions">
                    <button type="submit" disabled=move || create.pending().get()>"Create token"</button>
                </div>
            </ActionForm>
            {move || created().map(|t| {
                let secret = t.token.clone();
                let copy = move |_| {
                    let clipboard = window().navigator().clipboard();
                    let _ = clipboard.write_text(&secret);
                    copied.set(true);
                };
                view! {
                    <div class="notice" role="status" id="new-token">
                        <p>"Token " <strong>{t.meta.name.clone()}</strong> " created. Copy it now: it is not shown again."</p>
                        <p class="secret"><code id="token-secret">{t.token.clone()}</code>
                            <button type="button" class="secondary" id="copy-token" on:click=copy>
                                {move || if copied.get() { "Copied" } else { "Copy" }}
                            </button>
                        </p>
                    </div>
                }
            })}
        </section>
        <section class="card" aria-labelledby="tokens-title">
            <h2 id="tokens-title">"Your tokens"</h2>
            <FormError error=revoke_error fields=&[] />
            <Suspense fallback=Loading>
                {move || tokens.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! { <p class="empty">"No tokens yet."</p> }.into_any(),
                    Ok(mut page) => view! {
                        <table id="tokens-table">
                            <thead><tr>
                                <th scope="col">"Name"</th><th scope="col">"Token"</th><th scope="col">"Scopes"</th>
                                <th scope="col">"State"</th><th scope="col">"Expires"</th><th scope="col">"Last used"</th><th scope="col"></th>
                            </tr></thead>
                            <tbody>
                                {std::mem::take(&mut page.items).into_iter().map(|t| view! {
                                    <tr data-token=t.name.clone()>
                                        <td>{t.name.clone()}<br /><span class="muted">{t.bio.clone()}</span></td>
                                        <td><code>{format!("{}…", t.token_prefix)}</code></td>
                                        <td>{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</td>
                                        <td><StateBadge state=t.state.clone() /></td>
                                        <td>{short_time(&t.expired_at)}</td>
                                        <td>{t.last_used_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                                        <td>
                                            <ActionForm action=revoke attr:class="inline">
                                                <input type="hidden" name="id" value=t.id />
                                                <button type="submit" class="link-button danger">"Revoke"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <Pager page noun="tokens" />
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

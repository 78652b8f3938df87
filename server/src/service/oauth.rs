//! Signing in through an OAuth2 / OIDC provider, without the HTTP: which providers there are,
//! starting a flow, and finishing one into an ordinary sign-in session. The protocol lives in
//! [`crate::auth::oauth`]; cookies and redirects stay in `api::oauth`.

use sea_orm::DatabaseConnection;

use crate::{
    Error,
    auth::{
        IssuedToken, OAuth, Sessions,
        oauth::{Callback, Started},
    },
    entity::users,
};

pub use common::api::OAuthProvider;

/// A finished provider sign-in: who, its session's token, and where to send the browser.
#[derive(Debug)]
pub struct SignedIn {
    pub user: users::Model,
    pub token: IssuedToken,
    /// Local path to land on.
    pub return_to: String,
}

/// The providers one may sign in with, named for people.
pub fn providers(oauth: &OAuth) -> Vec<OAuthProvider> {
    oauth
        .providers()
        .map(|p| OAuthProvider {
            name: p.name.clone(),
            display_name: if p.display_name.is_empty() { p.name.clone() } else { p.display_name.clone() },
        })
        .collect()
}

/// Starts a flow at provider `name`: where to send the browser, and the signed flow to keep.
pub async fn begin(oauth: &OAuth, name: &str, return_to: Option<&str>) -> Result<Started, Error> {
    oauth.begin(name, return_to).await
}

/// Finishes a flow from the provider's callback and the signed flow kept at its start, and opens
/// a session for the user the provider account belongs to.
pub async fn finish(
    db: &DatabaseConnection,
    oauth: &OAuth,
    sessions: &Sessions,
    name: &str,
    callback: Callback,
    signed_flow: Option<&str>,
) -> Result<SignedIn, Error> {
    let finished = oauth.finish(db, name, callback, signed_flow).await?;
    let token = sessions.open(db, &finished.user).await?;
    Ok(SignedIn { user: finished.user, token, return_to: finished.return_to })
}

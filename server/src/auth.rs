//! Who is calling: sign-in sessions (JWT), personal access tokens, and the [`Principal`] every
//! guarded handler receives.
//!
//! A sign-in token is a short-lived HS256 JWT naming a session row; signing out, changing the
//! password or disabling the user ends sessions at once, because every request checks its
//! session row (the JWT alone is never trusted). The signing key lives in the database, so all
//! replicas accept each other's tokens. Personal access tokens are random strings of which only
//! a SHA-256 is stored; they serve `/oapi/v1` for machines. [`oauth`] lets people sign in
//! through OAuth2 / OIDC providers, ending in the same kind of session.

mod jwt;
mod layer;
pub mod oauth;
mod principal;
mod session;
pub mod token;

pub use jwt::Keys;
pub use layer::{SESSION_COOKIE, cookie, require_session, require_token};
pub use oauth::OAuth;
pub use principal::{Credential, Principal, Visible};
pub use session::{IssuedToken, Sessions};

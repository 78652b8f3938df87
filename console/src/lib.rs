//! The operator console: a Leptos app the manager renders on the server and the browser hydrates.
//!
//! With the `ssr` feature the crate is a library the manager mounts (see `server::console`); with
//! `hydrate` it compiles to the WASM bundle that makes the same pages interactive.
//!
//! The console never decides who may see what. Its server functions call the manager's public
//! HTTP API on behalf of the signed-in user ([`api`]), so the one authorization layer that guards
//! `/api/v1` guards the console too.

pub mod api;
pub mod app;
mod charts;
mod components;
mod context;
mod pages;

pub use app::{App, shell};

/// Entry point of the WASM bundle: attaches event handlers to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}

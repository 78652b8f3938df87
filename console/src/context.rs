//! What the signed-in layout provides to the pages under it, and how pages read it.
//!
//! It lives apart from `app` (the shell and the router, which imports every page) so that pages
//! depend on this small module, never on the router: no import circle between `app` and `pages`.

use leptos::prelude::*;

use common::api::Me;

/// Makes the signed-in user available to every page under the signed-in layout.
pub fn provide_me(me: Me) {
    provide_context(me);
}

/// The signed-in user, for pages under the signed-in layout (`app::Shell`).
pub fn use_me() -> Me {
    expect_context::<Me>()
}

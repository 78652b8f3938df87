//! One module per page.

pub mod status;

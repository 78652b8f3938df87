//! The manager's integration tests, one binary (one link of the crate graph instead of seven).
//! The harness is `testkit` (a manager on a fresh database per test, a scheduler, dfdaemons, an
//! HTTP origin); `DAMSELFLY_TEST_DB` picks the databases (default: all three).

mod api;
mod certificates;
mod dfctl;
mod https;
mod jobs;
mod join_tokens;
mod launcher;
mod manager;
mod managers;
mod oauth;
mod preheat;
mod preheat_digest;
mod registration;
mod registry;
mod tenant_matrix;

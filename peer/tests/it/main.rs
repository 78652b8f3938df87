//! The peer's integration tests, one binary: the dfdaemon alone, in a cluster with a scheduler
//! and a seed peer, its proxy, and `dfget` as a user types it. The harness is `testkit`.

mod dfdaemon;
mod dfget_cli;
mod p2p;
mod proxy;

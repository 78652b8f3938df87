//! The peer's integration tests, one binary: the dfdaemon alone, in a cluster with a scheduler
//! and a seed peer (with a manager or without: `standalone`), its proxy, its cache's tasks on the local API, and `dfget` and `dfctl` as a
//! user types them. The harness is `testkit`.

mod conformance;
mod connect;
mod dfctl_cli;
mod dfdaemon;
mod dfget_cli;
mod offline;
mod p2p;
mod private;
mod private_url;
mod proxy;
mod proxy_range;
mod runtime;
mod standalone;
mod tasks;

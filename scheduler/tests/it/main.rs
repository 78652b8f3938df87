//! The scheduler's integration tests, one binary; the harness is `testkit`.

mod cached;
mod grpc;
mod preheat;

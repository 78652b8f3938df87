//! The scheduler's integration tests, one binary; the harness is `testkit`.

mod grpc;
mod preheat;

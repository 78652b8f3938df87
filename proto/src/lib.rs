//! Generated gRPC types and services, one module per versioned protobuf package.
//!
//! Only the `rpc` modules of the services may use these types; everything behind them works on
//! the crates' own types (see ARCHITECTURE.md). Field numbers are a wire contract: never reuse one.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `damselfly.common.v1`: messages shared by several services.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("damselfly.common.v1");
    }
}

/// `damselfly.scheduler.v1`: how peers announce hosts and downloads and receive parents.
pub mod scheduler {
    pub mod v1 {
        tonic::include_proto!("damselfly.scheduler.v1");
    }
}

/// `damselfly.dfdaemon.v1`: the local download API that `dfget` calls on a dfdaemon.
pub mod dfdaemon {
    pub mod v1 {
        tonic::include_proto!("damselfly.dfdaemon.v1");
    }
}

/// `damselfly.manager.v1`: registration and keepalive of schedulers, seed peers and peers.
pub mod manager {
    pub mod v1 {
        tonic::include_proto!("damselfly.manager.v1");
    }
}

pub mod enrol;

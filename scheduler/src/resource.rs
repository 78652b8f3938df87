//! The scheduler's state: hosts, tasks and their peers, and the seed peers waiting for work.
//! Pure in-memory bookkeeping: no I/O, no protobuf types; the `rpc` layer drives it.

mod host;
mod orders;
mod preheats;
mod seed;
mod task;
mod watchers;

pub use host::{Host, HostKind, Hosts};
pub use orders::{HostOrder, HostOrders};
pub use preheats::{PreheatOutcome, PreheatResult, Preheats, ReportRefused};
pub use seed::{SeedOrder, SeedWatchers};
pub use task::{
    Census, ContentInfo, ParentInfo, PeerPhase, PeerRecord, PieceReport, PieceSource, SEED_GRACE, Sent, SourceDecision,
    Task, TaskCell, TaskSnapshot, Tasks, Update,
};
pub use watchers::{Delivery, Watchers};

//! Helpers shared by the task modules' tests: a host, and a task whose source fetched every piece.

use std::time::Instant;

use common::{
    digest::PieceDigest,
    ids::{HostId, PeerId},
};

use super::{ContentInfo, PieceReport, PieceSource, SourceDecision, Task};
use crate::resource::{Host, HostKind};

pub(super) fn host(name: &str) -> Host {
    Host {
        id: HostId(name.into()),
        hostname: name.into(),
        ip: "127.0.0.1".into(),
        upload_port: 4000,
        kind: HostKind::Normal,
        idc: String::new(),
        location: String::new(),
        upload_limit: 64,
        version: "0".into(),
    }
}

/// `a` (on host "a") registers, is elected the source, and reports all `pieces` pieces of
/// 1 KiB from the origin with their digests.
pub(super) fn fetch_all_from_origin(t: &mut Task, a: &PeerId, pieces: u32) {
    t.register(a.clone(), HostId("a".into()), false);
    assert!(matches!(t.decide_source(a, false, false, Instant::now()), SourceDecision::BackToSource(_)));
    let content_length = Some(u64::from(pieces) * 1024);
    t.content_info(a, ContentInfo { content_length, piece_length: 1024, ranges: false }).unwrap();
    let origin: Vec<PieceReport> = (0..pieces).map(from_origin).collect();
    t.pieces_finished(a, &origin).unwrap();
}

/// Piece `n` fetched from the origin, with the digest the tests give piece `n` (`[n; 32]`).
pub(super) fn from_origin(n: u32) -> PieceReport {
    PieceReport {
        number: n,
        digest: Some(PieceDigest([n as u8; 32])),
        source: PieceSource::Origin { content: None },
        cost_micros: 1,
    }
}

pub(super) fn from_parent(n: u32, parent: &PeerId, cost_micros: u64) -> PieceReport {
    PieceReport { number: n, digest: None, source: PieceSource::Parent(parent.clone()), cost_micros }
}

/// Records that `parent` was handed to `child`, as an update would have.
pub(super) fn offer(t: &mut Task, child: &PeerId, parent: &PeerId) {
    t.peers.get_mut(child).expect("child registered").offered.insert(parent.clone());
}

//! Which peer fetches which piece from the origin.
//!
//! When the origin serves byte ranges, the task's pieces are spread over the peers that may go
//! back to source (the seed peer and normal peers alike): each piece is handed to exactly one
//! peer at a time, which fetches it with a `Range` request, records its BLAKE3 with the scheduler
//! and then serves it to the others. The origin's bandwidth so enters the swarm through many
//! uplinks instead of one, and each byte still leaves the origin about once.
//!
//! How many peers fetch from the origin at once is capped (`scheduling.back_to_source_limit`):
//! a peer that owns no unfinished origin piece gets one only while fewer than the cap do, so a
//! task with thousands of peers never opens thousands of connections to the origin.
//!
//! Pure: the caller passes who owns what and who asks; nothing here looks anything up.

use common::ids::PeerId;

/// Default of the most origin pieces one peer fetches at a time.
pub const DEFAULT_ORIGIN_PIECES_PER_PEER: usize = 1;

/// Each piece's origin state, as the task sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPiece {
    /// Nobody fetches it yet.
    Free,
    /// `PeerId` fetches it from the origin now.
    Assigned(PeerId),
    /// Its digest is recorded: it is in the swarm.
    Done,
}

/// Hands `fetcher` free pieces until it owns `per_peer` unfinished ones, lowest number first, so
/// the content enters the swarm roughly in order and every fetcher gets work while any is left.
/// A peer that owns none joins the fetchers only while fewer than `max_fetchers` peers own one.
/// Marks them `Assigned` in `pieces` and returns them.
pub fn assign(pieces: &mut [OriginPiece], fetcher: &PeerId, per_peer: usize, max_fetchers: usize) -> Vec<u32> {
    let owned = pieces.iter().filter(|p| matches!(p, OriginPiece::Assigned(o) if o == fetcher)).count();
    if owned == 0 && !may_go_back_to_source(fetchers(pieces), max_fetchers) {
        return Vec::new();
    }
    let mut given = Vec::new();
    for (n, piece) in pieces.iter_mut().enumerate() {
        if owned + given.len() >= per_peer {
            break;
        }
        if *piece == OriginPiece::Free {
            *piece = OriginPiece::Assigned(fetcher.clone());
            given.push(n as u32);
        }
    }
    given
}

/// How many distinct peers fetch pieces from the origin now (own an unfinished piece).
pub fn fetchers(pieces: &[OriginPiece]) -> usize {
    let mut owners: Vec<&PeerId> = pieces
        .iter()
        .filter_map(|p| match p {
            OriginPiece::Assigned(o) => Some(o),
            _ => None,
        })
        .collect();
    owners.sort_unstable();
    owners.dedup();
    owners.len()
}

/// Whether one more peer may start fetching from the origin while `fetching` peers do, under a
/// cap of `limit` concurrent back-to-source peers. The single-source election and [`assign`]
/// both obey it.
pub fn may_go_back_to_source(fetching: usize, limit: usize) -> bool {
    fetching < limit
}

/// Frees every unfinished piece `peer` owned (it left or failed); returns how many.
pub fn release(pieces: &mut [OriginPiece], peer: &PeerId) -> usize {
    let mut freed = 0;
    for piece in pieces.iter_mut() {
        if matches!(piece, OriginPiece::Assigned(o) if o == peer) {
            *piece = OriginPiece::Free;
            freed += 1;
        }
    }
    freed
}

/// Whether `peer` may report piece `n`'s digest: only the peer it was handed to.
pub fn may_report(pieces: &[OriginPiece], peer: &PeerId, n: u32) -> bool {
    matches!(pieces.get(n as usize), Some(OriginPiece::Assigned(o)) if o == peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> PeerId {
        PeerId(s.into())
    }

    #[test]
    fn pieces_are_spread_over_fetchers_and_never_handed_out_twice() {
        let mut pieces = vec![OriginPiece::Free; 5];
        let (a, b, c) = (peer("a"), peer("b"), peer("c"));
        assert_eq!(assign(&mut pieces, &a, 2, usize::MAX), vec![0, 1]);
        assert_eq!(assign(&mut pieces, &a, 2, usize::MAX), Vec::<u32>::new(), "a already owns its share");
        assert_eq!(assign(&mut pieces, &b, 2, usize::MAX), vec![2, 3]);
        assert_eq!(assign(&mut pieces, &c, 2, usize::MAX), vec![4]);
        assert_eq!(assign(&mut pieces, &c, 2, usize::MAX), Vec::<u32>::new(), "nothing is left");
        let owners: Vec<_> = pieces.iter().filter(|p| matches!(p, OriginPiece::Assigned(_))).collect();
        assert_eq!(owners.len(), 5);
    }

    #[test]
    fn a_finished_piece_makes_room_for_the_next() {
        let mut pieces = vec![OriginPiece::Free; 4];
        let a = peer("a");
        assert_eq!(assign(&mut pieces, &a, 2, usize::MAX), vec![0, 1]);
        pieces[0] = OriginPiece::Done;
        assert_eq!(assign(&mut pieces, &a, 2, usize::MAX), vec![2]);
    }

    #[test]
    fn no_more_than_max_fetchers_fetch_at_once() {
        let mut pieces = vec![OriginPiece::Free; 6];
        let (a, b, c) = (peer("a"), peer("b"), peer("c"));
        assert_eq!(assign(&mut pieces, &a, 1, 2), vec![0]);
        assert_eq!(assign(&mut pieces, &b, 1, 2), vec![1]);
        assert_eq!(assign(&mut pieces, &c, 1, 2), Vec::<u32>::new(), "two peers fetch already");
        assert_eq!(fetchers(&pieces), 2);
        // A fetcher at the cap still gets more when its share grows; a newcomer does not.
        assert_eq!(assign(&mut pieces, &a, 2, 2), vec![2]);
        assert_eq!(assign(&mut pieces, &c, 2, 2), Vec::<u32>::new());
        // b finishes its piece: its slot is free, whoever asks first takes it.
        pieces[1] = OriginPiece::Done;
        assert_eq!(fetchers(&pieces), 1);
        assert_eq!(assign(&mut pieces, &c, 1, 2), vec![3]);
        assert_eq!(assign(&mut pieces, &b, 1, 2), Vec::<u32>::new(), "c took the slot");
        // A leaving fetcher frees its slot too.
        release(&mut pieces, &a);
        assert_eq!(assign(&mut pieces, &b, 1, 2), vec![0]);
    }

    #[test]
    fn back_to_source_obeys_the_cap() {
        assert!(may_go_back_to_source(0, 1));
        assert!(!may_go_back_to_source(1, 1));
        assert!(may_go_back_to_source(199, 200));
        assert!(!may_go_back_to_source(200, 200));
    }

    #[test]
    fn a_leaving_fetcher_frees_only_its_unfinished_pieces() {
        let mut pieces = vec![OriginPiece::Free; 4];
        let (a, b) = (peer("a"), peer("b"));
        assign(&mut pieces, &a, 2, usize::MAX);
        assign(&mut pieces, &b, 2, usize::MAX);
        pieces[0] = OriginPiece::Done;
        assert_eq!(release(&mut pieces, &a), 1);
        assert_eq!(pieces[0], OriginPiece::Done);
        assert_eq!(pieces[1], OriginPiece::Free);
        assert_eq!(assign(&mut pieces, &b, 3, usize::MAX), vec![1]);
    }

    #[test]
    fn only_the_owner_may_report_a_digest() {
        let mut pieces = vec![OriginPiece::Free; 3];
        let (a, b) = (peer("a"), peer("b"));
        assign(&mut pieces, &a, 1, usize::MAX);
        assert!(may_report(&pieces, &a, 0));
        assert!(!may_report(&pieces, &b, 0));
        assert!(!may_report(&pieces, &a, 1), "not handed out");
        assert!(!may_report(&pieces, &a, 7), "beyond the content");
        pieces[0] = OriginPiece::Done;
        assert!(!may_report(&pieces, &a, 0), "already recorded");
    }
}

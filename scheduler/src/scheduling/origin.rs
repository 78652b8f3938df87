//! Which peer fetches which piece from the origin.
//!
//! When the origin serves byte ranges, the task's pieces are spread over the peers that may go
//! back to source (the seed peer and normal peers alike): each piece is handed to exactly one
//! peer at a time, which fetches it with a `Range` request, records its BLAKE3 with the scheduler
//! and then serves it to the others. The origin's bandwidth so enters the swarm through many
//! uplinks instead of one, and each byte still leaves the origin about once.
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
/// Marks them `Assigned` in `pieces` and returns them.
pub fn assign(pieces: &mut [OriginPiece], fetcher: &PeerId, per_peer: usize) -> Vec<u32> {
    let owned = pieces.iter().filter(|p| matches!(p, OriginPiece::Assigned(o) if o == fetcher)).count();
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
        assert_eq!(assign(&mut pieces, &a, 2), vec![0, 1]);
        assert_eq!(assign(&mut pieces, &a, 2), Vec::<u32>::new(), "a already owns its share");
        assert_eq!(assign(&mut pieces, &b, 2), vec![2, 3]);
        assert_eq!(assign(&mut pieces, &c, 2), vec![4]);
        assert_eq!(assign(&mut pieces, &c, 2), Vec::<u32>::new(), "nothing is left");
        let owners: Vec<_> = pieces.iter().filter(|p| matches!(p, OriginPiece::Assigned(_))).collect();
        assert_eq!(owners.len(), 5);
    }

    #[test]
    fn a_finished_piece_makes_room_for_the_next() {
        let mut pieces = vec![OriginPiece::Free; 4];
        let a = peer("a");
        assert_eq!(assign(&mut pieces, &a, 2), vec![0, 1]);
        pieces[0] = OriginPiece::Done;
        assert_eq!(assign(&mut pieces, &a, 2), vec![2]);
    }

    #[test]
    fn a_leaving_fetcher_frees_only_its_unfinished_pieces() {
        let mut pieces = vec![OriginPiece::Free; 4];
        let (a, b) = (peer("a"), peer("b"));
        assign(&mut pieces, &a, 2);
        assign(&mut pieces, &b, 2);
        pieces[0] = OriginPiece::Done;
        assert_eq!(release(&mut pieces, &a), 1);
        assert_eq!(pieces[0], OriginPiece::Done);
        assert_eq!(pieces[1], OriginPiece::Free);
        assert_eq!(assign(&mut pieces, &b, 3), vec![1]);
    }

    #[test]
    fn only_the_owner_may_report_a_digest() {
        let mut pieces = vec![OriginPiece::Free; 3];
        let (a, b) = (peer("a"), peer("b"));
        assign(&mut pieces, &a, 1);
        assert!(may_report(&pieces, &a, 0));
        assert!(!may_report(&pieces, &b, 0));
        assert!(!may_report(&pieces, &a, 1), "not handed out");
        assert!(!may_report(&pieces, &a, 7), "beyond the content");
        pieces[0] = OriginPiece::Done;
        assert!(!may_report(&pieces, &a, 0), "already recorded");
    }
}

//! Which peer fetches which piece from the origin.
//!
//! When the origin serves byte ranges, the task's pieces are spread over the peers that may go
//! back to source (the seed peer and normal peers alike): each piece is handed to exactly one
//! peer at a time, which fetches it with a `Range` request, records its BLAKE3 with the scheduler
//! and then serves it to the others. The origin's bandwidth so enters the swarm through many
//! uplinks instead of one, and each byte still leaves the origin about once.
//!
//! Few pieces are fetched at once (`scheduling.origin_ranges_at_once`, and never by more peers
//! than `scheduling.back_to_source_limit`), and the fetchers take turns: each free piece goes to
//! the one with the fewest origin pieces so far. The origin so serves a few transfers at full
//! speed, each piece is whole (and passed on) soon, and the first copies of the pieces leave
//! through every uplink, not the same few.
//!
//! Pure: the caller passes who owns what and who may fetch; nothing here looks anything up.

use std::collections::HashMap;

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

/// A peer that may fetch from the origin, as [`hand_out`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetcher {
    pub peer: PeerId,
    /// Origin pieces it has fetched so far in this task.
    pub turns: u32,
}

/// Hands free pieces, lowest number first, to the `fetchers` (in the caller's order) and returns
/// them as (piece, fetcher), marked `Assigned` in `pieces`. A candidate owns at most `per_peer`
/// unfinished pieces, and one that owns none joins only while fewer than `max_fetchers` peers
/// own one (any peer: the count comes from `pieces`).
///
/// Each piece goes to the eligible fetcher with the fewest pieces in hand, then the fewest turns:
/// the fetchers take turns, so the first copy of every new piece enters the swarm through a
/// different uplink, instead of the same few fetchers (the quickest to ask) feeding everyone.
/// With `max_fetchers` below the number of fetchers, the origin's bandwidth is shared by fewer
/// transfers at a time, so each piece is whole (and can be passed on) sooner.
pub fn hand_out(
    pieces: &mut [OriginPiece],
    candidates: &[Fetcher],
    per_peer: usize,
    max_fetchers: usize,
) -> Vec<(u32, PeerId)> {
    if !pieces.contains(&OriginPiece::Free) {
        return Vec::new();
    }
    let mut held: HashMap<&PeerId, usize> = HashMap::new();
    for p in pieces.iter() {
        if let OriginPiece::Assigned(o) = p {
            *held.entry(o).or_default() += 1;
        }
    }
    let mut owned: Vec<usize> = candidates.iter().map(|f| held.get(&f.peer).copied().unwrap_or(0)).collect();
    let mut active = held.len();
    let mut turns: Vec<u32> = candidates.iter().map(|f| f.turns).collect();
    let mut given = Vec::new();
    for (n, piece) in pieces.iter_mut().enumerate() {
        if *piece != OriginPiece::Free {
            continue;
        }
        let next = (0..candidates.len())
            .filter(|&i| owned[i] < per_peer && (owned[i] > 0 || may_go_back_to_source(active, max_fetchers)))
            .min_by_key(|&i| (owned[i], turns[i], i));
        let Some(i) = next else { break };
        if owned[i] == 0 {
            active += 1;
        }
        owned[i] += 1;
        turns[i] += 1;
        *piece = OriginPiece::Assigned(candidates[i].peer.clone());
        given.push((n as u32, candidates[i].peer.clone()));
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

    fn fetchers_of(names: &[(&str, u32)]) -> Vec<Fetcher> {
        names.iter().map(|(n, turns)| Fetcher { peer: peer(n), turns: *turns }).collect()
    }

    #[test]
    fn pieces_are_spread_over_fetchers_and_never_handed_out_twice() {
        let mut pieces = vec![OriginPiece::Free; 5];
        let all = fetchers_of(&[("a", 0), ("b", 0), ("c", 0)]);
        assert_eq!(
            hand_out(&mut pieces, &all, 2, usize::MAX),
            vec![(0, peer("a")), (1, peer("b")), (2, peer("c")), (3, peer("a")), (4, peer("b"))]
        );
        assert_eq!(hand_out(&mut pieces, &all, 2, usize::MAX), vec![], "nothing is left");
        assert!(pieces.iter().all(|p| matches!(p, OriginPiece::Assigned(_))));
    }

    #[test]
    fn fetchers_take_turns_so_the_quickest_to_ask_does_not_fetch_everything() {
        let mut pieces = vec![OriginPiece::Free; 6];
        // a fetched two pieces already, b one, c none: c goes first, then b, then a.
        let all = fetchers_of(&[("a", 2), ("b", 1), ("c", 0)]);
        assert_eq!(hand_out(&mut pieces, &all, 1, 1), vec![(0, peer("c"))], "one fetcher at a time");
        assert_eq!(hand_out(&mut pieces, &all, 1, 1), vec![], "c still fetches");
        pieces[0] = OriginPiece::Done;
        let all = fetchers_of(&[("a", 2), ("b", 1), ("c", 1)]);
        assert_eq!(hand_out(&mut pieces, &all, 1, 1), vec![(1, peer("b"))], "tie on turns: caller's order");
        pieces[1] = OriginPiece::Done;
        let all = fetchers_of(&[("a", 2), ("b", 2), ("c", 1)]);
        assert_eq!(hand_out(&mut pieces, &all, 1, 1), vec![(2, peer("c"))]);
    }

    #[test]
    fn a_finished_piece_makes_room_for_the_next() {
        let mut pieces = vec![OriginPiece::Free; 4];
        let a = fetchers_of(&[("a", 0)]);
        assert_eq!(hand_out(&mut pieces, &a, 2, usize::MAX), vec![(0, peer("a")), (1, peer("a"))]);
        assert_eq!(hand_out(&mut pieces, &a, 2, usize::MAX), vec![], "a holds its share");
        pieces[0] = OriginPiece::Done;
        assert_eq!(hand_out(&mut pieces, &a, 2, usize::MAX), vec![(2, peer("a"))]);
    }

    #[test]
    fn no_more_than_max_fetchers_fetch_at_once() {
        let mut pieces = vec![OriginPiece::Free; 6];
        let all = fetchers_of(&[("a", 0), ("b", 0), ("c", 0)]);
        assert_eq!(hand_out(&mut pieces, &all, 1, 2), vec![(0, peer("a")), (1, peer("b"))]);
        assert_eq!(fetchers(&pieces), 2);
        // A fetcher at the cap still gets more when its share grows; a newcomer does not.
        assert_eq!(hand_out(&mut pieces, &all, 2, 2), vec![(2, peer("a")), (3, peer("b"))]);
        // b finishes its pieces: its slot goes to c, who has had no turn.
        pieces[1] = OriginPiece::Done;
        pieces[3] = OriginPiece::Done;
        let all = fetchers_of(&[("a", 2), ("b", 2), ("c", 0)]);
        assert_eq!(hand_out(&mut pieces, &all, 1, 2), vec![(4, peer("c"))]);
        // A leaving fetcher frees its slot and its pieces.
        release(&mut pieces, &peer("a"));
        let rest = fetchers_of(&[("b", 2), ("c", 1)]);
        assert_eq!(hand_out(&mut pieces, &rest, 1, 2), vec![(0, peer("b"))]);
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
        pieces[0] = OriginPiece::Assigned(a.clone());
        pieces[1] = OriginPiece::Assigned(a.clone());
        pieces[2] = OriginPiece::Assigned(b.clone());
        pieces[3] = OriginPiece::Assigned(b.clone());
        pieces[0] = OriginPiece::Done;
        assert_eq!(release(&mut pieces, &a), 1);
        assert_eq!(pieces[0], OriginPiece::Done);
        assert_eq!(pieces[1], OriginPiece::Free);
        let only_b = [Fetcher { peer: b.clone(), turns: 2 }];
        assert_eq!(hand_out(&mut pieces, &only_b, 3, usize::MAX), vec![(1, b.clone())]);
    }

    #[test]
    fn only_the_owner_may_report_a_digest() {
        let mut pieces = vec![OriginPiece::Free; 3];
        let (a, b) = (peer("a"), peer("b"));
        hand_out(&mut pieces, &[Fetcher { peer: a.clone(), turns: 0 }], 1, usize::MAX);
        assert!(may_report(&pieces, &a, 0));
        assert!(!may_report(&pieces, &b, 0));
        assert!(!may_report(&pieces, &a, 1), "not handed out");
        assert!(!may_report(&pieces, &a, 7), "beyond the content");
        pieces[0] = OriginPiece::Done;
        assert!(!may_report(&pieces, &a, 0), "already recorded");
    }
}

//! Piece arithmetic: how content is cut into pieces and how big the pieces are.
//!
//! Every component must agree on this arithmetic byte for byte: the scheduler counts pieces to
//! judge progress, a peer asks a parent for piece `n` and checks the length it gets back, and the
//! piece length is part of the task id. So it lives here, once, as pure functions with no I/O.
//!
//! The size scopes follow Dragonfly: empty and tiny content need no P2P at all (a tiny file can
//! travel inside a scheduler message), small content is a single piece fetched from one parent,
//! and only normal content is spread over several parents.

use std::ops::{Range, RangeInclusive};

use serde::{Deserialize, Serialize};

use crate::{digest::PieceDigest, ids::PeerId};

/// A piece a peer finished, as it tells the scheduler: the peer builds it, the scheduler's task
/// state takes it (the `rpc` edges of both turn it into and out of the wire message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceReport {
    pub number: u32,
    /// The piece's digest, set when the peer fetched it from the origin.
    pub digest: Option<PieceDigest>,
    pub source: PieceSource,
    /// How long the transfer took.
    pub cost_micros: u64,
}

/// Where a finished piece came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceSource {
    /// Fetched from the origin. `content`: the piece's bytes, sent only when the piece is the
    /// whole content and tiny, for the scheduler to hand out inline.
    Origin { content: Option<Vec<u8>> },
    /// From this parent peer.
    Parent(PeerId),
    /// The scheduler's tiny content, checked against piece 0's digest.
    Inline,
}

/// The smallest piece length [`default_piece_length`] picks: 4 MiB.
pub const MIN_PIECE_LENGTH: u64 = 4 << 20;

/// The largest piece length [`default_piece_length`] picks: 64 MiB.
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;

/// The piece lengths a download may ask for (dfget's `--piece-length`, the proxy's
/// `X-Dragonfly-Piece-Length`, a job's `piece_length`): 1 KiB to 1 GiB.
pub const REQUESTABLE_PIECE_LENGTHS: RangeInclusive<u64> = 1 << 10..=1 << 30;

/// The most pieces one content may have. Bitmaps, digest tables and piece queues are sized by
/// the count, so it is bounded whatever a peer or an origin claims: 2^20 pieces of 1 GiB is a
/// petabyte.
pub const MAX_PIECES: u32 = 1 << 20;

/// Content of at most this many bytes is [`SizeScope::Tiny`].
pub const TINY_LIMIT: u64 = 128;

/// How many pieces [`default_piece_length`] aims for before clamping.
const TARGET_PIECE_COUNT: u64 = 500;

/// The piece length used when the user does not choose one: the next power of two of
/// `content_length / 500`, clamped to [`MIN_PIECE_LENGTH`]..=[`MAX_PIECE_LENGTH`].
///
/// Anything up to 2000 MiB gets 4 MiB pieces; larger content gets fewer than ~1000 pieces until
/// the 64 MiB ceiling is reached; past 64 TiB pieces grow again so their count stays within
/// [`MAX_PIECES`].
pub fn default_piece_length(content_length: u64) -> u64 {
    let fits = content_length.div_ceil(u64::from(MAX_PIECES)).checked_next_power_of_two().unwrap_or(u64::MAX);
    default_by_target(content_length).max(fits).min(*REQUESTABLE_PIECE_LENGTHS.end())
}

fn default_by_target(content_length: u64) -> u64 {
    (content_length / TARGET_PIECE_COUNT)
        .checked_next_power_of_two()
        .unwrap_or(MAX_PIECE_LENGTH)
        .clamp(MIN_PIECE_LENGTH, MAX_PIECE_LENGTH)
}

/// A piece length a download asked for, checked against [`REQUESTABLE_PIECE_LENGTHS`].
pub fn requested_piece_length(length: u64) -> Result<u64, PieceError> {
    if REQUESTABLE_PIECE_LENGTHS.contains(&length) {
        Ok(length)
    } else {
        Err(PieceError::PieceLengthOutOfRange(length))
    }
}

/// How a download is carried out, decided by its size alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeScope {
    /// No bytes: nothing to fetch.
    Empty,
    /// 1..=[`TINY_LIMIT`] bytes, whatever the piece length.
    Tiny,
    /// More than [`TINY_LIMIT`] bytes that fit in exactly one piece.
    Small,
    /// More than one piece.
    Normal,
}

/// Why a [`PieceLayout`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PieceError {
    /// A piece length of zero would need infinitely many pieces.
    #[error("piece length must be greater than zero")]
    ZeroPieceLength,
    /// The content would need more than [`MAX_PIECES`] pieces.
    #[error("content of {content_length} bytes needs more than {MAX_PIECES} pieces of {piece_length} bytes")]
    TooManyPieces { content_length: u64, piece_length: u64 },
    /// A piece length longer than the longest a download may ask for.
    #[error("piece length {0} is more than 1 GiB")]
    PieceTooLong(u64),
    /// A requested piece length outside [`REQUESTABLE_PIECE_LENGTHS`].
    #[error("piece length {0} must be between 1 KiB and 1 GiB")]
    PieceLengthOutOfRange(u64),
}

/// Content of a known length cut into pieces of a fixed length; the last piece may be shorter.
///
/// Build it with [`PieceLayout::new`] (deserialization goes through it too), which guarantees a
/// piece length of 1 byte to 1 GiB and at most [`MAX_PIECES`] pieces. The fields are public to read; a
/// layout assembled by hand with a zero piece length has no pieces rather than panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLayout")]
pub struct PieceLayout {
    /// Total bytes of the content.
    pub content_length: u64,
    /// Bytes in every piece but the last.
    pub piece_length: u64,
}

/// The unchecked shape [`PieceLayout`] deserializes from before validation.
#[derive(Deserialize)]
struct RawLayout {
    content_length: u64,
    piece_length: u64,
}

impl TryFrom<RawLayout> for PieceLayout {
    type Error = PieceError;

    fn try_from(raw: RawLayout) -> Result<Self, Self::Error> {
        Self::new(raw.content_length, raw.piece_length)
    }
}

impl PieceLayout {
    /// A layout for `content_length` bytes in pieces of `piece_length` bytes.
    pub fn new(content_length: u64, piece_length: u64) -> Result<Self, PieceError> {
        if piece_length == 0 {
            return Err(PieceError::ZeroPieceLength);
        }
        if piece_length > *REQUESTABLE_PIECE_LENGTHS.end() {
            return Err(PieceError::PieceTooLong(piece_length));
        }
        if content_length.div_ceil(piece_length) > u64::from(MAX_PIECES) {
            return Err(PieceError::TooManyPieces { content_length, piece_length });
        }
        Ok(Self { content_length, piece_length })
    }

    /// Number of pieces: 0 for empty content, otherwise `ceil(content_length / piece_length)`.
    pub fn count(&self) -> u32 {
        if self.piece_length == 0 {
            return 0;
        }
        let count = self.content_length.div_ceil(self.piece_length);
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Byte range of piece `number` (0-based), or `None` past the last piece.
    pub fn range(&self, number: u32) -> Option<Range<u64>> {
        if number >= self.count() {
            return None;
        }
        let start = u64::from(number) * self.piece_length;
        let end = start.saturating_add(self.piece_length).min(self.content_length);
        Some(start..end)
    }

    /// Length in bytes of piece `number`, or `None` past the last piece.
    pub fn len_of(&self, number: u32) -> Option<u64> {
        self.range(number).map(|r| r.end - r.start)
    }

    /// How the content should be downloaded, by size.
    pub fn scope(&self) -> SizeScope {
        match self.content_length {
            0 => SizeScope::Empty,
            1..=TINY_LIMIT => SizeScope::Tiny,
            _ if self.count() == 1 => SizeScope::Small,
            _ => SizeScope::Normal,
        }
    }

    /// Whether the content is tiny and one piece, so that piece is the whole content and its
    /// bytes may ride in the scheduler's messages instead of a piece connection. Tiny content cut
    /// into several (tiny) pieces goes the normal way.
    pub fn travels_inline(&self) -> bool {
        self.scope() == SizeScope::Tiny && self.count() == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn default_piece_length_boundaries() {
        let cases = [
            (0, 4 * MIB),
            (1, 4 * MIB),
            (4 * MIB, 4 * MIB),
            (2000 * MIB, 4 * MIB),
            // 2000 MiB + 499 still divides down to exactly 4 MiB.
            (2000 * MIB + 499, 4 * MIB),
            (2000 * MIB + 500, 8 * MIB),
            (4000 * MIB, 8 * MIB),
            (4000 * MIB + 500, 16 * MIB),
            (16000 * MIB, 32 * MIB),
            (32000 * MIB, 64 * MIB),
            (32000 * MIB + 500, 64 * MIB),
            // Past 64 TiB the count would exceed MAX_PIECES: pieces grow, up to 1 GiB.
            (64 << 40, 64 * MIB),
            ((64 << 40) + 1, 128 * MIB),
            (1 << 50, 1024 * MIB),
            (u64::MAX, 1024 * MIB),
        ];
        for (content_length, expected) in cases {
            assert_eq!(default_piece_length(content_length), expected, "content_length {content_length}");
        }
    }

    /// (content length, piece count, length of the last piece, scope)
    fn table(piece: u64) -> Vec<(u64, u32, Option<u64>, SizeScope)> {
        vec![
            (0, 0, None, SizeScope::Empty),
            (1, 1, Some(1), SizeScope::Tiny),
            (128, 1, Some(128), SizeScope::Tiny),
            (129, 1, Some(129), SizeScope::Small),
            (piece - 1, 1, Some(piece - 1), SizeScope::Small),
            (piece, 1, Some(piece), SizeScope::Small),
            (piece + 1, 2, Some(1), SizeScope::Normal),
            (10 * piece + 3, 11, Some(3), SizeScope::Normal),
        ]
    }

    #[test]
    fn layout_table() {
        for piece in [4 * MIB, 1024] {
            for (content_length, count, last_len, scope) in table(piece) {
                let layout = PieceLayout::new(content_length, piece).unwrap();
                let ctx = format!("piece {piece}, content {content_length}");
                assert_eq!(layout.count(), count, "count: {ctx}");
                assert_eq!(layout.scope(), scope, "scope: {ctx}");
                let last = count.checked_sub(1);
                assert_eq!(last.and_then(|n| layout.len_of(n)), last_len, "last: {ctx}");
                assert_eq!(layout.range(count), None, "past end: {ctx}");
                assert_eq!(layout.len_of(count), None, "past end: {ctx}");
            }
        }
    }

    #[test]
    fn ranges_tile_the_content_exactly() {
        for piece in [4 * MIB, 1024] {
            for (content_length, ..) in table(piece) {
                let layout = PieceLayout::new(content_length, piece).unwrap();
                let mut next = 0;
                for n in 0..layout.count() {
                    let range = layout.range(n).unwrap();
                    assert_eq!(range.start, next, "gap before piece {n} of {content_length}");
                    assert!(!range.is_empty(), "empty piece {n} of {content_length}");
                    if n + 1 < layout.count() {
                        assert_eq!(range.end - range.start, piece, "short inner piece {n}");
                    }
                    next = range.end;
                }
                assert_eq!(next, content_length, "coverage of {content_length}");
            }
        }
    }

    #[test]
    fn explicit_ranges() {
        let layout = PieceLayout::new(2500, 1024).unwrap();
        assert_eq!(layout.range(0), Some(0..1024));
        assert_eq!(layout.range(1), Some(1024..2048));
        assert_eq!(layout.range(2), Some(2048..2500));
        assert_eq!(layout.len_of(2), Some(452));
        assert_eq!(layout.range(3), None);
        assert_eq!(layout.range(u32::MAX), None);
    }

    #[test]
    fn tiny_wins_over_piece_count() {
        // 128 bytes in 100-byte pieces is two pieces but still tiny.
        let layout = PieceLayout::new(128, 100).unwrap();
        assert_eq!(layout.count(), 2);
        assert_eq!(layout.scope(), SizeScope::Tiny);
        assert!(!layout.travels_inline(), "two pieces: no piece is the whole content");
        assert!(PieceLayout::new(128, 128).unwrap().travels_inline());
        assert!(PieceLayout::new(1, 4 * MIB).unwrap().travels_inline());
        assert!(!PieceLayout::new(0, 4 * MIB).unwrap().travels_inline());
        assert!(!PieceLayout::new(129, 4 * MIB).unwrap().travels_inline());
        // 129 bytes in 100-byte pieces is normal, not small.
        assert_eq!(PieceLayout::new(129, 100).unwrap().scope(), SizeScope::Normal);
    }

    #[test]
    fn zero_piece_length_is_rejected() {
        assert_eq!(PieceLayout::new(10, 0), Err(PieceError::ZeroPieceLength));
        assert_eq!(PieceLayout::new(0, 0), Err(PieceError::ZeroPieceLength));
    }

    #[test]
    fn piece_count_is_bounded() {
        let max = u64::from(MAX_PIECES);
        let at_limit = PieceLayout::new(max, 1).unwrap();
        assert_eq!(at_limit.count(), MAX_PIECES);
        assert_eq!(at_limit.range(MAX_PIECES - 1), Some(max - 1..max));
        assert_eq!(
            PieceLayout::new(max + 1, 1),
            Err(PieceError::TooManyPieces { content_length: max + 1, piece_length: 1 })
        );
        // A peer claiming a huge content in tiny pieces gets no 4-billion-entry table.
        assert!(PieceLayout::new(u64::from(u32::MAX), 1).is_err());
    }

    #[test]
    fn piece_length_is_bounded() {
        let gib = 1 << 30;
        assert_eq!(PieceLayout::new(u64::MAX, gib + 1), Err(PieceError::PieceTooLong(gib + 1)));
        assert_eq!(PieceLayout::new(100_000_000_000, 100_000_000_000), Err(PieceError::PieceTooLong(100_000_000_000)));
        let layout = PieceLayout::new(u64::from(MAX_PIECES) * gib, gib).unwrap();
        assert_eq!(layout.count(), MAX_PIECES);
        assert_eq!(layout.range(MAX_PIECES - 1).unwrap().end, u64::from(MAX_PIECES) * gib);
    }

    #[test]
    fn requested_piece_lengths_are_1_kib_to_1_gib() {
        assert_eq!(requested_piece_length(1024), Ok(1024));
        assert_eq!(requested_piece_length(1 << 30), Ok(1 << 30));
        for bad in [0, 1, 1023, (1 << 30) + 1, 100_000_000_000] {
            assert_eq!(requested_piece_length(bad), Err(PieceError::PieceLengthOutOfRange(bad)));
        }
    }

    #[test]
    fn default_piece_length_keeps_huge_content_within_the_piece_count() {
        let content = 200 << 40; // 200 TiB
        let len = default_piece_length(content);
        assert!(PieceLayout::new(content, len).is_ok(), "{len}");
        assert!(len > MAX_PIECE_LENGTH);
        assert!(default_piece_length(u64::MAX) <= 1 << 30);
    }

    #[test]
    fn hand_built_zero_piece_length_has_no_pieces() {
        let layout = PieceLayout { content_length: 10, piece_length: 0 };
        assert_eq!(layout.count(), 0);
        assert_eq!(layout.range(0), None);
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let layout = PieceLayout::new(10 * MIB + 3, 4 * MIB).unwrap();
        let json = serde_json::to_string(&layout).unwrap();
        assert_eq!(json, r#"{"content_length":10485763,"piece_length":4194304}"#);
        assert_eq!(serde_json::from_str::<PieceLayout>(&json).unwrap(), layout);
        let bad = serde_json::from_str::<PieceLayout>(r#"{"content_length":1,"piece_length":0}"#);
        assert!(bad.is_err());
    }
}

/// Content and piece lengths come from origins, peers and schedulers: any pair either makes a
/// bounded layout whose pieces tile the content exactly, or is refused.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const GIB: u64 = 1 << 30;

    /// Any u64, and values around the bounds where the arithmetic turns.
    fn length() -> impl Strategy<Value = u64> {
        let near = |at: u64| (at.saturating_sub(2)..=at.saturating_add(2)).boxed();
        prop_oneof![
            any::<u64>(),
            0..4096u64,
            near(1 << 10),
            near(GIB),
            near(u64::from(MAX_PIECES)),
            near(u64::from(MAX_PIECES) * GIB),
            near(u64::MAX),
            (1..=u64::from(MAX_PIECES), 1..=GIB).prop_map(|(n, len)| n * len),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_layout_is_bounded_and_its_pieces_tile_the_content(content in length(), piece in length(), probe in any::<u32>()) {
            let Ok(layout) = PieceLayout::new(content, piece) else {
                let fits = piece != 0 && piece <= GIB && content.div_ceil(piece) <= u64::from(MAX_PIECES);
                prop_assert!(!fits, "{content} bytes in pieces of {piece} refused");
                return Ok(());
            };
            prop_assert!((1..=GIB).contains(&layout.piece_length));
            let count = layout.count();
            prop_assert!(count <= MAX_PIECES);
            prop_assert_eq!(u64::from(count), content.div_ceil(piece));
            if count == 0 {
                prop_assert_eq!(content, 0);
            } else {
                // Every piece but the last is whole; the last one ends the content.
                let last = layout.range(count - 1).unwrap();
                prop_assert_eq!(last.start, u64::from(count - 1) * piece);
                prop_assert_eq!(last.end, content);
                prop_assert!(!last.is_empty() && last.end - last.start <= piece);
                prop_assert_eq!(u64::from(count - 1) * piece + layout.len_of(count - 1).unwrap(), content);
                let n = probe % count;
                let range = layout.range(n).unwrap();
                prop_assert_eq!(range.start, u64::from(n) * piece);
                if n + 1 < count {
                    prop_assert_eq!(range.end, layout.range(n + 1).unwrap().start);
                    prop_assert_eq!(layout.len_of(n), Some(piece));
                }
            }
            if count <= 4096 {
                let mut next = 0;
                for n in 0..count {
                    let range = layout.range(n).unwrap();
                    prop_assert_eq!(range.start, next);
                    next = range.end;
                }
                prop_assert_eq!(next, content);
            }
            // Past the last piece there is nothing.
            let past = count.saturating_add(probe % 1024);
            prop_assert_eq!(layout.range(past), None);
            prop_assert_eq!(layout.len_of(past), None);
            prop_assert_eq!(layout.range(u32::MAX), None);
            prop_assert_eq!(layout.travels_inline(), (1..=TINY_LIMIT).contains(&content) && count == 1);
        }

        /// A layout from the wire (JSON) is what `new` makes of it, refused alike.
        #[test]
        fn deserializing_refuses_what_new_refuses(content in length(), piece in length()) {
            let json = format!(r#"{{"content_length":{content},"piece_length":{piece}}}"#);
            prop_assert_eq!(serde_json::from_str::<PieceLayout>(&json).ok(), PieceLayout::new(content, piece).ok());
        }

        #[test]
        fn requested_piece_lengths_are_1_kib_to_1_gib_and_default_ones_fit(length in length()) {
            let requestable = (1 << 10..=GIB).contains(&length);
            prop_assert_eq!(requested_piece_length(length).is_ok(), requestable);
            let default = default_piece_length(length);
            prop_assert!(REQUESTABLE_PIECE_LENGTHS.contains(&default), "default {default} for {length}");
            // Up to the largest content a layout can hold, the default length makes one.
            if length <= u64::from(MAX_PIECES) * GIB {
                prop_assert!(PieceLayout::new(length, default).is_ok(), "{length} in pieces of {default}");
            }
        }
    }
}

//! Which pieces a peer has: a growable bit set with a compact wire form (LSB-first bytes), used
//! by the scheduler to tell children what each parent can serve.

use crate::piece::MAX_PIECES;

/// A set of piece numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PieceBitmap {
    words: Vec<u64>,
    count: u32,
}

impl PieceBitmap {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n`; returns whether it was new.
    pub fn insert(&mut self, n: u32) -> bool {
        let (w, b) = ((n / 64) as usize, n % 64);
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        self.count += u32::from(new);
        new
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: u32) -> bool {
        self.words.get((n / 64) as usize).is_some_and(|w| w & (1 << (n % 64)) != 0)
    }

    /// How many pieces are in the set.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether every piece in `0..total` is present.
    pub fn is_complete(&self, total: u32) -> bool {
        self.count >= total && (0..total).all(|n| self.contains(n))
    }

    /// The numbers in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(w, word)| (0..64u32).filter(move |b| word & (1 << b) != 0).map(move |b| w as u32 * 64 + b))
    }

    /// Wire form: byte `i / 8`, bit `i % 8` (LSB first); trailing zero bytes dropped.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        while out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    /// Parses the wire form of [`to_bytes`](Self::to_bytes). Bits from [`MAX_PIECES`] on name no
    /// piece of any content and are ignored, so whatever arrives, the set takes at most
    /// `MAX_PIECES / 8` bytes (and piece numbers cannot overflow).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut set = Self::new();
        let named = &bytes[..bytes.len().min(MAX_PIECES as usize / 8)];
        for (i, byte) in named.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    set.insert(i as u32 * 8 + bit);
                }
            }
        }
        set
    }
}

impl FromIterator<u32> for PieceBitmap {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut set = Self::new();
        for n in iter {
            set.insert(n);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_complete_and_wire_round_trip() {
        let mut set = PieceBitmap::new();
        assert!(set.is_complete(0));
        assert!(set.insert(0));
        assert!(!set.insert(0));
        set.insert(9);
        set.insert(64);
        set.insert(200);
        assert_eq!(set.len(), 4);
        assert!(set.contains(64) && !set.contains(63) && !set.contains(10_000));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 9, 64, 200]);
        let bytes = set.to_bytes();
        assert_eq!(bytes[0], 0b1, "piece 0 is bit 0 of byte 0");
        assert_eq!(bytes[1], 0b10, "piece 9 is bit 1 of byte 1");
        assert_eq!(bytes.len(), 26);
        assert_eq!(PieceBitmap::from_bytes(&bytes), set);
        assert!(!set.is_complete(3));
        assert!((0..3).collect::<PieceBitmap>().is_complete(3));
    }
}

/// A bitmap's wire form arrives from the scheduler: any bytes decode without panicking into a
/// set no larger than the most pieces a content may have, and the wire form round-trips.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Bytes of the wire form that can name a piece.
    const MAX_BYTES: usize = MAX_PIECES as usize / 8;

    /// Short arbitrary bytes, and a few set bytes after a long run of zeros, up to twice the
    /// bound.
    fn wire() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            8 => proptest::collection::vec(any::<u8>(), 0..512),
            1 => (0..2 * MAX_BYTES, proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(zeros, tail)| {
                let mut bytes = vec![0; zeros];
                bytes.extend(tail);
                bytes
            }),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(128))]

        #[test]
        fn any_bytes_decode_into_at_most_max_pieces(bytes in wire()) {
            let set = PieceBitmap::from_bytes(&bytes);
            prop_assert!(set.words.len() <= MAX_BYTES / 8, "{} words held", set.words.len());
            let held: Vec<u32> = set.iter().collect();
            prop_assert_eq!(set.len() as usize, held.len());
            let named = |n: u32| bytes.get(n as usize / 8).is_some_and(|b| b & (1 << (n % 8)) != 0);
            prop_assert!(held.iter().all(|&n| n < MAX_PIECES && named(n)));
            // Every bit that names a piece is held: the wire form of what was decoded is the
            // input, cut at the bound, less trailing zeros.
            let mut expected = bytes[..bytes.len().min(MAX_BYTES)].to_vec();
            while expected.last() == Some(&0) {
                expected.pop();
            }
            prop_assert_eq!(set.to_bytes(), expected);
        }

        #[test]
        fn a_set_round_trips_through_its_wire_form(
            // Most sets are small; a few reach the last piece number (slow to decode unoptimised).
            pieces in prop_oneof![8 => Just(4096), 1 => Just(MAX_PIECES)]
                .prop_flat_map(|span| proptest::collection::vec(0..span, 0..64)),
        ) {
            let set: PieceBitmap = pieces.iter().copied().collect();
            let decoded = PieceBitmap::from_bytes(&set.to_bytes());
            prop_assert_eq!(&decoded, &set);
            let mut sorted = pieces.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(decoded.iter().collect::<Vec<_>>(), sorted.clone());
            prop_assert_eq!(decoded.len() as usize, sorted.len());
            prop_assert!(pieces.iter().all(|&n| decoded.contains(n)));
            let total = sorted.len() as u32;
            prop_assert_eq!(decoded.is_complete(total), sorted.iter().copied().eq(0..total));
        }
    }
}

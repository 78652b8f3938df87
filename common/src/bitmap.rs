//! Which pieces a peer has: a growable bit set with a compact wire form (LSB-first bytes), used
//! by the scheduler to tell children what each parent can serve.

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

    /// Parses the wire form of [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut set = Self::new();
        for (i, byte) in bytes.iter().enumerate() {
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

//! Personal access tokens: how they look, and how they are stored (a SHA-256, never the token).

use rand::{Rng, distr::Alphanumeric};
use sha2::{Digest, Sha256};

/// Every token starts with this, so secret scanners and people can recognise one.
pub const PREFIX: &str = "dfly_pat_";

/// A fresh token: the prefix and 40 alphanumerics (~238 bits).
pub fn generate() -> String {
    let random: String = rand::rng().sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    format!("{PREFIX}{random}")
}

/// What the database keeps to recognise `token`.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The part shown in lists: the prefix and four more characters.
pub fn display_prefix(token: &str) -> String {
    token.chars().take(PREFIX.len() + 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 40);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(display_prefix(&a).len(), PREFIX.len() + 4);
    }
}

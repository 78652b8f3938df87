//! Digests: of a whole content as users write them (`sha256:<hex>` or `blake3:<hex>`,
//! [`Digest`]), and of one piece as peers and the scheduler pass them around ([`PieceDigest`],
//! always BLAKE3: 32 bytes on the wire, 64 hex characters in text and on disk).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Hash algorithms accepted for whole-content verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha256,
    Blake3,
}

/// An expected or computed digest. The hex is kept lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

/// Why a digest string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} must look like <algorithm>:<hex>, e.g. sha256:…")]
    Shape(String),
    #[error("unsupported digest algorithm {0:?} (use sha256 or blake3)")]
    Algorithm(String),
    #[error("digest hex must be {expected} hex characters, got {got:?}")]
    Hex { expected: usize, got: String },
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s.split_once(':').ok_or_else(|| DigestError::Shape(s.into()))?;
        let algorithm = match algo.to_ascii_lowercase().as_str() {
            "sha256" => Algorithm::Sha256,
            "blake3" => Algorithm::Blake3,
            other => return Err(DigestError::Algorithm(other.into())),
        };
        let hex = hex.to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::Hex { expected: 64, got: hex });
        }
        Ok(Self { algorithm, hex })
    }
}

impl Digest {
    /// The digest an OCI distribution blob URL names (`…/v2/<name>/blobs/sha256:<hex>`), so a
    /// blob fetched by URL is verified even when the caller gave no digest.
    pub fn from_oci_blob_path(path: &str) -> Option<Self> {
        let (before, last) = path.rsplit_once('/')?;
        if !before.ends_with("/blobs") || !before.contains("/v2/") {
            return None;
        }
        last.parse().ok().filter(|d: &Digest| d.algorithm == Algorithm::Sha256)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algo = match self.algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Blake3 => "blake3",
        };
        write!(f, "{algo}:{}", self.hex)
    }
}

/// A piece's BLAKE3: what the peer that fetched the piece from the origin reports, what the
/// scheduler records and hands out, and what every other copy of the piece is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceDigest(pub [u8; 32]);

impl PieceDigest {
    /// The digest in its wire form (exactly 32 bytes); `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lower-case hex characters (the peer's metadata keeps digests so).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<[u8; 32]> for PieceDigest {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// 64 lower-case hex characters.
impl fmt::Display for PieceDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// From 64 hex characters (either case).
impl FromStr for PieceDigest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| DigestError::Hex { expected: 64, got: s.to_owned() })?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let hex = "AB".repeat(32);
        let d: Digest = format!("SHA256:{hex}").parse().unwrap();
        assert_eq!(d.algorithm, Algorithm::Sha256);
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
    }

    #[test]
    fn oci_blob_urls_name_their_digest() {
        let hex = "a".repeat(64);
        let d = Digest::from_oci_blob_path(&format!("/v2/library/alpine/blobs/sha256:{hex}")).unwrap();
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        assert!(Digest::from_oci_blob_path(&format!("/v2/x/manifests/sha256:{hex}")).is_none());
        assert!(Digest::from_oci_blob_path("/v2/x/blobs/sha256:short").is_none());
        assert!(Digest::from_oci_blob_path(&format!("/files/blobs/sha256:{hex}")).is_none());
    }

    #[test]
    fn piece_digests_are_32_bytes_shown_as_hex() {
        let d = PieceDigest([0xab; 32]);
        assert_eq!(d.to_string(), "ab".repeat(32));
        assert_eq!("AB".repeat(32).parse::<PieceDigest>(), Ok(d));
        assert_eq!(PieceDigest::from_slice(&[0xab; 32]), Some(d));
        assert_eq!(PieceDigest::from_slice(&[0xab; 31]), None);
        assert!(matches!("ab".repeat(31).parse::<PieceDigest>(), Err(DigestError::Hex { .. })));
        assert!(matches!("g".repeat(64).parse::<PieceDigest>(), Err(DigestError::Hex { .. })));
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!("abc".parse::<Digest>(), Err(DigestError::Shape(_))));
        assert!(matches!("md5:00".parse::<Digest>(), Err(DigestError::Algorithm(_))));
        assert!(matches!("blake3:xyz".parse::<Digest>(), Err(DigestError::Hex { .. })));
        assert!(matches!(format!("sha256:{}", "g".repeat(64)).parse::<Digest>(), Err(DigestError::Hex { .. })));
    }
}

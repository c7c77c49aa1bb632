//! The API key format: `rgk_` + the key's id (32 lowercase hex digits) + a secret (43
//! characters of `[0-9A-Za-z]`, each uniform: 43 × log2(62) ≈ 256 bits) + a checksum
//! (6 characters of the same alphabet: the CRC-32 of everything before it, base62,
//! zero-padded). 85 characters, no separator (a double-click selects it whole).
//!
//! Why this shape, as GitHub's tokens: the `rgk_` prefix and fixed length let secret
//! scanners find a leaked key by pattern (`rgk_[0-9a-f]{32}[0-9A-Za-z]{49}`), and the
//! checksum lets them (and the server) tell a real key from a look-alike offline, so a
//! mistyped or random string is refused before any database work. The id says which
//! row to check; only the SHA-256 of the whole key is stored (invariant 14), so the
//! key cannot be rebuilt from the database.

use rand::{Rng, distr::Alphanumeric};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const PREFIX: &str = "rgk_";
const ID_LEN: usize = 32;
const SECRET_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// The length of every key.
pub const KEY_LEN: usize = PREFIX.len() + ID_LEN + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A key as presented by a client, its format and checksum checked: which key, and
/// the hash to compare with the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: Uuid,
    pub hash: [u8; 32],
}

/// A new key: the text shown once, and what is stored.
pub struct NewKey {
    pub id: Uuid,
    pub key: String,
    pub hash: [u8; 32],
}

impl NewKey {
    pub fn generate() -> NewKey {
        let id = Uuid::new_v4();
        let secret: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(SECRET_LEN)
            .map(char::from)
            .collect();
        let body = format!("{PREFIX}{}{secret}", id.simple());
        let key = format!("{body}{}", checksum(&body));
        let hash = hash_of(&key);
        NewKey { id, key, hash }
    }

    /// What lists show of the key: the prefix and the id, nothing secret.
    pub fn display_prefix(&self) -> String {
        self.key[..PREFIX.len() + ID_LEN].to_string()
    }
}

/// Whether a bearer credential is meant as an API key (then it is parsed as one and
/// never tried as a JWT).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Parses a presented key: `None` if its length, alphabet or checksum is wrong.
pub fn parse(key: &str) -> Option<PresentedKey> {
    if key.len() != KEY_LEN || !key.is_ascii() || !key.starts_with(PREFIX) {
        return None;
    }
    let (body, sum) = key.split_at(KEY_LEN - CHECKSUM_LEN);
    let id_text = &body[PREFIX.len()..PREFIX.len() + ID_LEN];
    let secret = &body[PREFIX.len() + ID_LEN..];
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if !id_text.bytes().all(lower_hex) || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if checksum(body) != sum {
        return None;
    }
    let id = Uuid::parse_str(id_text).ok()?;
    Some(PresentedKey {
        id,
        hash: hash_of(key),
    })
}

fn hash_of(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The CRC-32 (IEEE) of `text`, as 6 base62 characters.
fn checksum(text: &str) -> String {
    let mut value = crc32(text.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: a key is 79
/// bytes, so a table would buy nothing measurable.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_generated_key_parses_to_its_id_and_hash() {
        let new = NewKey::generate();
        assert_eq!(new.key.len(), KEY_LEN);
        assert!(new.key.starts_with("rgk_"));
        assert_eq!(
            parse(&new.key),
            Some(PresentedKey {
                id: new.id,
                hash: new.hash
            })
        );
        assert_eq!(new.display_prefix(), format!("rgk_{}", new.id.simple()));
    }

    #[test]
    fn a_key_with_one_character_changed_fails_its_checksum() {
        let new = NewKey::generate();
        let mut bytes = new.key.into_bytes();
        let at = PREFIX.len() + ID_LEN + 5;
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse(&String::from_utf8(bytes).unwrap()), None);
    }

    #[test]
    fn malformed_keys_are_refused() {
        for key in [
            "",
            "rgk_",
            "rgk_short",
            &"rgk_".repeat(30),
            &format!("{}é", "x".repeat(84)),
        ] {
            assert_eq!(parse(key), None, "{key}");
        }
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(NewKey::generate().key, NewKey::generate().key);
    }
}

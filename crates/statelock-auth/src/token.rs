//! Bearer tokens: generating them, and checking one against stored hashes.
//!
//! A token is `slt_` followed by 32 random bytes from the OS in base64url (256 bits of
//! entropy); the prefix lets secret scanners and people recognise one. Only its SHA-256 is
//! stored. A slow password hash (argon2, bcrypt) exists to make guessing a *low-entropy*
//! password from its hash expensive; no amount of guessing finds a 256-bit random token from
//! its SHA-256, so a plain hash is as safe here, and the server can afford to hash on every
//! request.
//!
//! Digests are compared with `subtle`'s constant-time equality, and every stored digest is
//! compared (no early exit), so the time an answer takes says nothing about how much of a
//! guess was right or which token matched.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "slt_";

/// A SHA-256 digest of a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash::of_bytes(token.as_bytes())
    }

    pub fn of_bytes(bytes: &[u8]) -> TokenHash {
        TokenHash(Sha256::digest(bytes).into())
    }

    /// 64 hex digits, as stored in the principals file.
    pub fn parse_hex(text: &str) -> Option<TokenHash> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(TokenHash(out))
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether any of `stored` equals this digest; looks at all of them, in constant time each.
    pub fn is_among<'a>(&self, stored: impl IntoIterator<Item = &'a TokenHash>) -> bool {
        let mut found = subtle::Choice::from(0);
        for candidate in stored {
            found |= self.0.ct_eq(&candidate.0);
        }
        found.into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest is no secret, but a short form keeps logs and test output readable.
        write!(f, "sha256:{}…", &self.to_hex()[..8])
    }
}

/// A new random token.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_round_trips() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(
            a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43,
            "{a}"
        );
        assert_ne!(a, b);
        let hash = TokenHash::of(&a);
        assert_eq!(TokenHash::parse_hex(&hash.to_hex()), Some(hash));
        assert!(hash.is_among(&[TokenHash::of(&b), hash]));
        assert!(!TokenHash::of(&b).is_among(&[hash]));
        assert!(!hash.is_among(&[]));
        assert_eq!(TokenHash::parse_hex("zz"), None);
        assert_eq!(TokenHash::parse_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn known_digest() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            TokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

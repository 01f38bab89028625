//! Random ids and secrets from ring's CSPRNG, base62 text, SHA-256.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of a record id: 21 base62 characters, about 125 bits.
pub const ID_LEN: usize = 21;
/// Length of a session or invitation token: 43 base62 characters, about 256 bits.
pub const TOKEN_LEN: usize = 43;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // SystemRandom only fails when the OS has no entropy source at all; nothing
    // sensible can continue then.
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random number generator failed");
}

/// `n` uniformly random base62 characters (rejection sampling, no modulo bias).
pub fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        fill_random(&mut buf);
        for &b in &buf {
            // 248 = 4 * 62: bytes at or above it would favour the first characters.
            if b < 248 {
                out.push(BASE62[(b % 62) as usize] as char);
                if out.len() == n {
                    break;
                }
            }
        }
    }
    out
}

/// A new record id.
pub fn new_id() -> String {
    random_base62(ID_LEN)
}

/// A new secret token (session, invitation).
pub fn new_token() -> String {
    random_base62(TOKEN_LEN)
}

/// SHA-256 of `data`: what is stored in place of a token or key.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether `s` could be a token this server issued (shape only).
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_base62_of_the_right_length_and_differ() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(looks_like_token(&a));
        assert_ne!(a, b);
        assert_eq!(new_id().len(), ID_LEN);
    }

    #[test]
    fn every_base62_character_shows_up() {
        let s = random_base62(10_000);
        for c in BASE62 {
            assert!(s.as_bytes().contains(c));
        }
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        let h = sha256(b"abc");
        assert_eq!(h[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}

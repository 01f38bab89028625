//! The API key format: `<prefix>_<43 base62 random><6 base62 CRC32>`.
//!
//! The random part carries 256 bits from the CSPRNG. The checksum covers everything
//! before it, so a mistyped or foreign string is refused without touching the database,
//! and secret scanners can recognise a keygate key with no false positives.

use super::token::{BASE62, random_base62, sha256};

pub const DEFAULT_PREFIX: &str = "kg";
pub const PREFIX_MAX: usize = 32;
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Characters of the random part kept in `start` for display.
const START_LEN: usize = 6;

/// Checks a user-chosen prefix: 1-32 characters of `[a-zA-Z0-9_-]`.
pub fn parse_prefix(p: &str) -> Result<&str, &'static str> {
    if p.is_empty() || p.len() > PREFIX_MAX {
        return Err("prefix must be 1-32 characters");
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("prefix may only contain letters, digits, '_' and '-'");
    }
    Ok(p)
}

/// A new key with `prefix` (already checked).
pub fn generate(prefix: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + 1 + RANDOM_LEN + CHECKSUM_LEN);
    key.push_str(prefix);
    key.push('_');
    key.push_str(&random_base62(RANDOM_LEN));
    let sum = checksum(key.as_bytes());
    key.push_str(&sum);
    key
}

/// What is shown of a key after creation: the prefix and the first random characters.
pub fn start(key: &str) -> String {
    let body_at = key.rfind('_').map_or(0, |i| i + 1);
    let end = (body_at + START_LEN).min(key.len());
    key[..end].to_owned()
}

/// Whether `key` has the shape and checksum of a key this server could have issued.
pub fn well_formed(key: &str) -> bool {
    let Some(us) = key.rfind('_') else {
        return false;
    };
    let (prefix, body) = (&key[..us], &key[us + 1..]);
    if parse_prefix(prefix).is_err() || body.len() != RANDOM_LEN + CHECKSUM_LEN {
        return false;
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let split = key.len() - CHECKSUM_LEN;
    checksum(&key.as_bytes()[..split]).as_bytes() == &key.as_bytes()[split..]
}

/// The stored form of a key.
pub fn hash(key: &str) -> [u8; 32] {
    sha256(key.as_bytes())
}

/// CRC-32 (IEEE) of `data` as 6 base62 digits, most significant first.
fn checksum(data: &[u8]) -> String {
    let mut n = u64::from(crc32(data));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate("kg");
        let b = generate("my-app_prod");
        assert!(a.starts_with("kg_") && well_formed(&a), "{a}");
        assert!(b.starts_with("my-app_prod_") && well_formed(&b), "{b}");
        assert_eq!(a.len(), 3 + 43 + 6);
        assert_ne!(a, generate("kg"));
        assert_eq!(start(&a), a[..9]);
    }

    #[test]
    fn a_single_changed_character_breaks_the_checksum() {
        let k = generate("kg");
        let mut bytes = k.clone().into_bytes();
        let i = 10;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(&String::from_utf8(bytes).unwrap()));
        assert!(!well_formed(&k[..k.len() - 1]));
        assert!(!well_formed(""));
        assert!(!well_formed("kg_"));
        assert!(!well_formed(&format!("bad prefix{}", &k[2..])));
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(parse_prefix("kg").is_ok());
        assert!(parse_prefix("a-b_c9").is_ok());
        assert!(parse_prefix("").is_err());
        assert!(parse_prefix(&"x".repeat(33)).is_err());
        assert!(parse_prefix("no spaces").is_err());
        assert!(parse_prefix("é").is_err());
    }
}

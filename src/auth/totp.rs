//! Two-factor codes: TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30-second steps, one step of
//! tolerance each way) through totp-rs, backup codes, and the AES-256-GCM seal that keeps
//! TOTP secrets unreadable in the database.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use totp_rs::{Algorithm, Totp};

use super::token::fill_random;

/// Digits of a code.
pub const DIGITS: u8 = 6;
/// Seconds of a time step.
pub const STEP_SECS: u64 = 30;
/// Steps accepted before and after the current one, for clocks that drift.
pub const SKEW: u16 = 1;
/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;
/// Backup codes a user gets at a time.
pub const BACKUP_CODES: usize = 10;

/// A new random secret.
pub fn new_secret() -> [u8; SECRET_LEN] {
    let mut s = [0u8; SECRET_LEN];
    fill_random(&mut s);
    s
}

fn totp(secret: &[u8], digits: u8, issuer: &str, account: &str) -> Option<Totp> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(digits)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        // An issuer or account name with a colon is refused by the builder: the URI's
        // label separates them with one.
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .ok()
}

/// The code of `secret` at Unix time `secs`, with `digits` digits.
pub fn code_at(secret: &[u8], digits: u8, secs: u64) -> Option<String> {
    totp(secret, digits, "keygate", "code").map(|t| t.generate(secs).to_string())
}

/// The time step `code` matches at Unix time `secs` (the current one or one next to it),
/// if any. A code is six digits; spaces a user typed between them are ignored.
pub fn check(secret: &[u8], code: &str, secs: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, DIGITS, "keygate", "code")?.check(&code, secs)
}

/// The `otpauth://totp/...` URI an authenticator app reads (usually from a QR code).
pub fn uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    totp(secret, DIGITS, issuer, account)?.to_url().ok()
}

/// The alphabet of backup codes: lower-case letters and digits without the look-alikes
/// 0, o, 1, l and i, so that a code copied by hand is read back as written.
const BACKUP_ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new backup code, `xxxxx-xxxxx` (about 49 bits).
pub fn new_backup_code() -> String {
    let mut out = String::with_capacity(11);
    let mut buf = [0u8; 32];
    while out.len() < 11 {
        fill_random(&mut buf);
        for &b in &buf {
            // 248 = 8 * 31: bytes at or above it would favour the first characters.
            if b >= 248 {
                continue;
            }
            if out.len() == 5 {
                out.push('-');
            }
            out.push(BACKUP_ALPHABET[(b % 31) as usize] as char);
            if out.len() == 11 {
                break;
            }
        }
    }
    out
}

/// A backup code as stored (its hash is taken of this): lower case, with the dash, and
/// without the spaces a user may have typed. `None` when it cannot be a backup code.
pub fn normalize_backup_code(code: &str) -> Option<String> {
    let plain: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if plain.len() != 10 || !plain.bytes().all(|b| BACKUP_ALPHABET.contains(&b)) {
        return None;
    }
    Some(format!("{}-{}", &plain[..5], &plain[5..]))
}

/// Bytes of the sealing key.
pub const KEY_LEN: usize = 32;

/// The server's key for TOTP secrets, kept outside the database: a copy of the database
/// alone does not give away anyone's second factor.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn new(bytes: &[u8; KEY_LEN]) -> SealKey {
        // A 32-byte key is always accepted for AES-256-GCM.
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("a 256-bit key");
        SealKey(LessSafeKey::new(key))
    }

    /// `plain` sealed for `owner` (the additional data): a random nonce, then the
    /// ciphertext and its tag. A sealed secret moved to another user's row does not open.
    pub fn seal(&self, plain: &[u8], owner: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut data = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut data,
            )
            .expect("sealing fits in memory");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        out
    }

    /// What `seal` sealed for `owner`; `None` when the key or the owner is not the one
    /// it was sealed with, or the bytes were changed.
    pub fn open(&self, sealed: &[u8], owner: &str) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Reads the sealing key from `path` (64 hexadecimal digits), creating the file with a
/// new random key, readable by its owner alone, when there is none. The file appears
/// whole or not at all, so two processes starting together agree on one key.
pub fn load_or_create_key(path: &std::path::Path) -> Result<SealKey, String> {
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = from_hex(text.trim()).ok_or_else(|| {
                format!("{shown} does not hold a key: expected 64 hexadecimal digits")
            })?;
            warn_if_readable_by_others(path);
            Ok(SealKey::new(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; KEY_LEN];
            fill_random(&mut bytes);
            let tmp = path.with_extension(format!("tmp-{}", super::token::new_id()));
            write_private(&tmp, &format!("{}\n", to_hex(&bytes)))
                .map_err(|e| format!("cannot write the key file {}: {e}", tmp.display()))?;
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Ok(SealKey::new(&bytes)),
                // Another process made it first: use its key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
                Err(e) => Err(format!("cannot create the key file {shown}: {e}")),
            }
        }
        Err(e) => Err(format!("cannot read the key file {shown}: {e}")),
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                "the key that seals TOTP secrets is readable by other users; chmod 600 it"
            );
        }
    }
    let _ = path;
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != 2 * KEY_LEN || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, the SHA-1 rows: the 20-byte ASCII secret "1234...90" and
    /// 8-digit codes.
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                code_at(secret, 8, time).as_deref(),
                Some(code),
                "T = {time}"
            );
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_steps_beside_it_only() {
        let secret = new_secret();
        let now = 1_700_000_015;
        let step = now / STEP_SECS;
        let code = code_at(&secret, DIGITS, now).unwrap();
        assert_eq!(check(&secret, &code, now), Some(step));
        assert_eq!(check(&secret, &code, now + STEP_SECS), Some(step));
        assert_eq!(check(&secret, &code, now - STEP_SECS), Some(step));
        assert_eq!(check(&secret, &code, now + 2 * STEP_SECS), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(check(&secret, &spaced, now), Some(step));
        for wrong in ["", "12345", "1234567", "abcdef", "１２３４５６"] {
            assert_eq!(check(&secret, wrong, now), None, "{wrong:?}");
        }
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let u = uri(b"12345678901234567890", "My keygate", "ada@example.com").unwrap();
        assert!(
            u.starts_with("otpauth://totp/My%20keygate:ada%40example.com?"),
            "{u}"
        );
        assert!(u.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{u}");
        assert!(u.contains("issuer=My%20keygate"), "{u}");
    }

    #[test]
    fn backup_codes_have_their_shape_and_normalize_back() {
        let c = new_backup_code();
        assert_eq!(c.len(), 11);
        assert_eq!(&c[5..6], "-");
        assert_eq!(normalize_backup_code(&c).as_deref(), Some(c.as_str()));
        let typed = c.replace('-', " ").to_uppercase();
        assert_eq!(normalize_backup_code(&typed).as_deref(), Some(c.as_str()));
        assert_ne!(new_backup_code(), c);
        assert_eq!(normalize_backup_code("abcde-fghij0"), None);
        assert_eq!(
            normalize_backup_code("abcde-fghi0"),
            None,
            "0 is not in the alphabet"
        );
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keygate.key");
        let first = load_or_create_key(&path).unwrap();
        let sealed = first.seal(b"x", "u");
        let again = load_or_create_key(&path).unwrap();
        assert_eq!(again.open(&sealed, "u").as_deref(), Some(&b"x"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::write(&path, "not a key").unwrap();
        let e = load_or_create_key(&path).unwrap_err();
        assert!(e.contains("64 hexadecimal digits"), "{e}");
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_owner() {
        let key = SealKey::new(&[7; KEY_LEN]);
        let sealed = key.seal(b"secret", "user-1");
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 6], b"secret");
        assert_eq!(key.open(&sealed, "user-1").as_deref(), Some(&b"secret"[..]));
        assert_eq!(key.open(&sealed, "user-2"), None);
        assert_eq!(SealKey::new(&[8; KEY_LEN]).open(&sealed, "user-1"), None);
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&changed, "user-1"), None);
        assert_eq!(key.open(&sealed[..5], "user-1"), None);
        assert_ne!(
            key.seal(b"secret", "user-1"),
            sealed,
            "each seal has its own nonce"
        );
    }
}

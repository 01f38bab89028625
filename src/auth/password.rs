//! Password hashing with argon2id in PHC string format, into memory the caller keeps.
//!
//! argon2's own `hash_password` allocates its 19 MiB work area on every call, and the
//! allocator keeps what each thread freed: a few hundred sign-ins grew the process by
//! gigabytes. Hashing here goes into a `Workspace` that a hashing thread owns and reuses.

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::token::fill_random;

/// Hashes and verifies passwords with one set of parameters.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// A real hash of a random password: unknown emails are verified against it so that
    /// they cost the same time as a wrong password.
    dummy: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password matches; `rehash` when the stored hash uses other parameters.
    Yes {
        rehash: bool,
    },
    No,
}

impl Hasher {
    /// `m_kib` is argon2's memory cost; OWASP's recommendation is 19 MiB with t=2, p=1.
    pub fn new(m_kib: u32) -> Hasher {
        let params = Params::new(m_kib.max(Params::MIN_M_COST), 2, 1, None)
            .expect("argon2 parameters within range");
        let mut h = Hasher {
            params,
            dummy: String::new(),
        };
        let mut pw = [0u8; 16];
        fill_random(&mut pw);
        h.dummy = h.hash(&String::from_utf8_lossy(&pw));
        h
    }

    /// A PHC string for `password` with a fresh random salt, allocating a work area.
    pub fn hash(&self, password: &str) -> String {
        self.hash_in(&mut Workspace::default(), password)
    }

    /// `hash`, in `ws`.
    pub fn hash_in(&self, ws: &mut Workspace, password: &str) -> String {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
        let mut raw = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let mut salt_bytes = [0u8; 16];
        let salt_raw = salt
            .decode_b64(&mut salt_bytes)
            .expect("a salt we just encoded decodes");
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_raw,
                &mut raw,
                ws.blocks(self.params.block_count()),
            )
            .expect("argon2 hashing with valid parameters");
        PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: (&self.params).try_into().expect("valid parameters print"),
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&raw).expect("32 bytes is a valid output")),
        }
        .to_string()
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no
    /// stored hash (the answer is then always `No`, after the same work). Allocates a
    /// work area.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Verified {
        self.verify_in(&mut Workspace::default(), password, stored)
    }

    /// `verify`, in `ws`.
    pub fn verify_in(&self, ws: &mut Workspace, password: &str, stored: Option<&str>) -> Verified {
        let phc = stored.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(phc) else {
            return Verified::No;
        };
        if !matches_in(ws, password, &parsed) || stored.is_none() {
            return Verified::No;
        }
        let current = Params::try_from(&parsed).ok();
        let rehash = parsed.algorithm.as_str() != "argon2id"
            || current.is_none_or(|p| {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            });
        Verified::Yes { rehash }
    }
}

/// The largest work area a stored hash may ask for (argon2's m in KiB): a hash that
/// wants more is not one this server wrote.
const MAX_M_KIB: u32 = 1024 * 1024;

/// Whether `password` hashes to `parsed`, computed in `ws`; compared in constant time.
fn matches_in(ws: &mut Workspace, password: &str, parsed: &PasswordHash<'_>) -> bool {
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    if params.m_cost() > MAX_M_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, out, ws.blocks(blocks))
        .is_err()
    {
        return false;
    }
    Output::new(out).is_ok_and(|computed| computed == expected)
}

/// A work area for argon2, kept by a hashing thread so each hash reuses it.
#[derive(Default)]
pub struct Workspace(Vec<Block>);

impl Workspace {
    fn blocks(&mut self, n: usize) -> &mut [Block] {
        if self.0.len() < n {
            self.0.resize(n, Block::new());
        }
        &mut self.0[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let h = Hasher::new(64);
        let phc = h.hash("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=2,p=1$"));
        assert_eq!(
            h.verify("correct horse", Some(&phc)),
            Verified::Yes { rehash: false }
        );
        assert_eq!(h.verify("wrong horse", Some(&phc)), Verified::No);
        assert_eq!(h.verify("correct horse", None), Verified::No);
        assert_eq!(h.verify("x", Some("not a phc string")), Verified::No);
    }

    #[test]
    fn hashes_made_in_a_reused_workspace_verify_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier;
        let h = Hasher::new(64);
        let mut ws = Workspace::default();
        let first = h.hash_in(&mut ws, "one");
        let second = h.hash_in(&mut ws, "two");
        let argon2 = Argon2::default();
        for (phc, pw) in [(&first, "one"), (&second, "two")] {
            let parsed = PasswordHash::new(phc).unwrap();
            assert!(argon2.verify_password(pw.as_bytes(), &parsed).is_ok());
        }
        assert_eq!(
            h.verify_in(&mut ws, "one", Some(&first)),
            Verified::Yes { rehash: false }
        );
        assert_eq!(h.verify_in(&mut ws, "two", Some(&first)), Verified::No);
        // A hash made elsewhere, with other parameters, verifies too.
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 3, 1, None).unwrap(),
        )
        .hash_password(b"three", &salt)
        .unwrap()
        .to_string();
        assert_eq!(
            h.verify_in(&mut ws, "three", Some(&other)),
            Verified::Yes { rehash: true }
        );
    }

    #[test]
    fn a_hash_with_other_parameters_asks_for_a_rehash() {
        let old = Hasher::new(64).hash("pw");
        assert_eq!(
            Hasher::new(128).verify("pw", Some(&old)),
            Verified::Yes { rehash: true }
        );
    }
}

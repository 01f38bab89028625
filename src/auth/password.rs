//! Password hashing with argon2id in PHC string format.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string for `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> String {
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashing with valid parameters")
            .to_string()
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no
    /// stored hash (the answer is then always `No`, after the same work).
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Verified {
        let phc = stored.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(phc) else {
            return Verified::No;
        };
        let ok = self
            .argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        if !ok || stored.is_none() {
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
    fn a_hash_with_other_parameters_asks_for_a_rehash() {
        let old = Hasher::new(64).hash("pw");
        assert_eq!(
            Hasher::new(128).verify("pw", Some(&old)),
            Verified::Yes { rehash: true }
        );
    }
}

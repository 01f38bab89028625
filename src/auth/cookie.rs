//! The session cookie's name and attributes.

pub const NAME: &str = "keygate.session_token";
pub const SECURE_NAME: &str = "__Host-keygate.session_token";
/// Over HTTPS with a `Domain`, which `__Host-` forbids.
pub const SHARED_NAME: &str = "__Secure-keygate.session_token";

/// How the session cookie is set: over HTTPS or not, and for a parent domain or only
/// for keygate's own host.
#[derive(Debug, Clone, Copy)]
pub struct Jar<'a> {
    pub secure: bool,
    /// `Domain`, so that sibling hosts behind forward auth receive the cookie.
    pub domain: Option<&'a str>,
}

impl Jar<'_> {
    /// The cookie name in use. Over HTTPS it carries the `__Host-` prefix: browsers then
    /// insist on `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant a
    /// cookie of the same name that shadows it. With a `Domain` that prefix is not
    /// allowed, and `__Secure-` still makes browsers insist on `Secure`.
    pub fn name(&self) -> &'static str {
        match (self.secure, self.domain.is_some()) {
            (false, _) => NAME,
            (true, false) => SECURE_NAME,
            (true, true) => SHARED_NAME,
        }
    }

    /// A `Set-Cookie` value that stores `token` for `max_age_secs`.
    pub fn set(&self, token: &str, max_age_secs: i64) -> String {
        let mut c = format!(
            "{}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax",
            self.name()
        );
        if let Some(d) = self.domain {
            c.push_str("; Domain=");
            c.push_str(d);
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// A `Set-Cookie` value that makes the browser forget the session cookie.
    pub fn clear(&self) -> String {
        self.set("", 0)
    }

    /// The name of one of sign-in's own cookies (`CHALLENGE`, `DEVICE`): `__Secure-`
    /// over HTTPS, so that browsers insist on `Secure`.
    pub fn side_name(&self, side: &Side) -> String {
        if self.secure {
            format!("__Secure-{}", side.name)
        } else {
            side.name.to_owned()
        }
    }

    /// A `Set-Cookie` value that stores `value` in cookie `side` for `max_age_secs`: only
    /// for keygate's own host and sign-in's own paths, never for scripts, never sent by
    /// another site.
    pub fn set_side(&self, side: &Side, value: &str, max_age_secs: i64) -> String {
        let mut c = format!(
            "{}={value}; Path={}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict",
            self.side_name(side),
            side.path
        );
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }
}

/// One of sign-in's own cookies.
#[derive(Debug, Clone, Copy)]
pub struct Side {
    pub name: &'static str,
    pub path: &'static str,
}

/// The password step of a sign-in that waits for its two-factor code (3 minutes), sent
/// only to the two-factor routes.
pub const CHALLENGE: Side = Side {
    name: "keygate.two_factor",
    path: "/api/auth/two-factor",
};

/// A browser trusted to skip the code step (30 days), sent only to sign-in's routes.
pub const DEVICE: Side = Side {
    name: "keygate.trust_device",
    path: "/api/auth",
};

/// The value of cookie `name` in a `Cookie` request header.
pub fn find<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_carries_every_attribute() {
        let jar = |secure, domain| Jar { secure, domain };
        assert_eq!(
            jar(false, None).set("abc", 259200),
            "keygate.session_token=abc; Path=/; Max-Age=259200; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            jar(true, None).set("abc", 10),
            "__Host-keygate.session_token=abc; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            jar(true, Some("example.com")).set("abc", 10),
            "__Secure-keygate.session_token=abc; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; \
             Domain=example.com; Secure"
        );
        assert_eq!(
            jar(false, Some("example.com")).set("abc", 10),
            "keygate.session_token=abc; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; \
             Domain=example.com"
        );
        assert!(jar(false, None).clear().contains("Max-Age=0"));
        assert_eq!(
            jar(true, Some("example.com")).set_side(&CHALLENGE, "t", 180),
            "__Secure-keygate.two_factor=t; Path=/api/auth/two-factor; Max-Age=180; HttpOnly; \
             SameSite=Strict; Secure"
        );
        assert_eq!(
            jar(false, None).set_side(&DEVICE, "d", 5),
            "keygate.trust_device=d; Path=/api/auth; Max-Age=5; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn finds_a_cookie_among_others() {
        let h = "a=1; keygate.session_token=tok; b=2";
        assert_eq!(find(h, NAME), Some("tok"));
        assert_eq!(find(h, SECURE_NAME), None);
        assert_eq!(find("keygate.session_tokenx=1", NAME), None);
    }
}

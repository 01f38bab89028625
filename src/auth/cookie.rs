//! The session cookie's name and attributes.

pub const NAME: &str = "keygate.session_token";
pub const SECURE_NAME: &str = "__Host-keygate.session_token";

/// The cookie name in use. Over HTTPS it carries the `__Host-` prefix: browsers then
/// insist on `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot plant a
/// cookie of the same name that shadows it.
pub fn name(secure: bool) -> &'static str {
    if secure { SECURE_NAME } else { NAME }
}

/// A `Set-Cookie` value that stores `token` for `max_age_secs`.
pub fn set(token: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// A `Set-Cookie` value that makes the browser forget the session cookie.
pub fn clear(secure: bool) -> String {
    set("", 0, secure)
}

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
        assert_eq!(
            set("abc", 259200, false),
            "keygate.session_token=abc; Path=/; Max-Age=259200; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            set("abc", 10, true),
            "__Host-keygate.session_token=abc; Path=/; Max-Age=10; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(clear(false).contains("Max-Age=0"));
    }

    #[test]
    fn finds_a_cookie_among_others() {
        let h = "a=1; keygate.session_token=tok; b=2";
        assert_eq!(find(h, NAME), Some("tok"));
        assert_eq!(find(h, SECURE_NAME), None);
        assert_eq!(find("keygate.session_tokenx=1", NAME), None);
    }
}

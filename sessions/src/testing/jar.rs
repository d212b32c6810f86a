//! A browser's cookie jar, as far as sessions need one: `Set-Cookie` replaces a cookie of the
//! same name and path, `Max-Age=0` (or an empty value) removes it, `Max-Age` ends it on the
//! client's clock, and a request carries the cookies whose `Path` matches, longest path first.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    expires: Option<SystemTime>,
}

/// The cookies a client keeps.
#[derive(Debug, Clone, Default)]
pub(super) struct Jar {
    cookies: Vec<Cookie>,
}

impl Jar {
    /// Takes one `Set-Cookie` header value, received at `now`.
    pub(super) fn receive(&mut self, set_cookie: &str, now: SystemTime) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let mut path = "/".to_owned();
        let mut max_age: Option<i64> = None;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if val.trim().starts_with('/') => path = val.trim().to_owned(),
                "max-age" => max_age = val.trim().parse().ok(),
                _ => {}
            }
        }
        self.cookies.retain(|c| !(c.name == name && c.path == path));
        if value.is_empty() || max_age.is_some_and(|age| age <= 0) {
            return;
        }
        let expires = max_age.map(|age| now + Duration::from_secs(age.unsigned_abs()));
        self.cookies.push(Cookie {
            name,
            value,
            path,
            expires,
        });
    }

    /// The `Cookie` header for a request to `path` at `now`, if any cookie goes.
    pub(super) fn header_for(&self, path: &str, now: SystemTime) -> Option<String> {
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|end| now < end) && path_matches(&c.path, path))
            .collect();
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let header = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        (!header.is_empty()).then_some(header)
    }

    /// The value of the live cookie `name` (the one of the longest path, when several).
    pub(super) fn get(&self, name: &str, now: SystemTime) -> Option<&str> {
        self.cookies
            .iter()
            .filter(|c| c.name == name && c.expires.is_none_or(|end| now < end))
            .max_by_key(|c| c.path.len())
            .map(|c| c.value.as_str())
    }

    /// Sets cookie `name` (path `/`, no end), as if the server had.
    pub(super) fn set(&mut self, name: &str, value: &str) {
        self.cookies.retain(|c| !(c.name == name && c.path == "/"));
        self.cookies.push(Cookie {
            name: name.to_owned(),
            value: value.to_owned(),
            path: "/".to_owned(),
            expires: None,
        });
    }

    /// Forgets every cookie named `name`.
    pub(super) fn remove(&mut self, name: &str) {
        self.cookies.retain(|c| c.name != name);
    }
}

/// RFC 6265's path match: the same path, or a prefix of it ending at a `/`.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    let request_path = request_path.split(['?', '#']).next().unwrap_or("/");
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn keeps_replaces_and_removes_like_a_browser() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let mut jar = Jar::default();
        jar.receive("session=a; HttpOnly; Path=/; Max-Age=60", now);
        jar.receive("other=x; Path=/admin", now);
        assert_eq!(jar.header_for("/cart", now).as_deref(), Some("session=a"));
        assert_eq!(
            jar.header_for("/admin/users?x=1", now).as_deref(),
            Some("other=x; session=a")
        );
        assert_eq!(
            jar.header_for("/administrator", now).as_deref(),
            Some("session=a")
        );
        jar.receive("session=b; Path=/", now);
        assert_eq!(jar.get("session", now), Some("b"));
        assert!(jar.get("session", now + Duration::from_secs(61)).is_some()); // no Max-Age now
        jar.receive("session=; Path=/; Max-Age=0", now);
        assert_eq!(jar.get("session", now), None);
        jar.receive("session=c; Max-Age=10", now);
        assert_eq!(jar.header_for("/", now + Duration::from_secs(10)), None);
    }
}

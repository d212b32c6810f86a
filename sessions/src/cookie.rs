//! Cookie attributes: what the session cookie is called, where it is sent, and how it is
//! read from requests and written to responses.

use std::time::Duration;

use http::HeaderValue;

/// The `__Host-` prefix: browsers accept such a cookie only with `Secure`, `Path=/` and no
/// `Domain`, so no subdomain and no plain-HTTP page can set or shadow it.
const HOST_PREFIX: &str = "__Host-";
/// The `__Secure-` prefix: browsers accept such a cookie only with `Secure`.
const SECURE_PREFIX: &str = "__Secure-";

/// The `SameSite` attribute: when a browser sends the cookie with cross-site requests.
///
/// ```
/// use sessions::{CookieConfig, SameSite};
/// let config = CookieConfig::new().same_site(SameSite::Strict);
/// assert_eq!(config.get_same_site(), SameSite::Strict);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SameSite {
    /// Only with same-site requests.
    Strict,
    /// With same-site requests and top-level cross-site navigations (links); the default.
    #[default]
    Lax,
    /// With every request, cross-site included. Browsers require `Secure` with it.
    None,
}

/// A cookie configuration browsers would mishandle, found by [`CookieConfig::validate`].
///
/// ```
/// use sessions::{CookieConfig, SameSite};
/// use sessions::error::CookieConfigError;
/// let err = CookieConfig::new().secure(false).same_site(SameSite::None).validate().unwrap_err();
/// assert!(matches!(err, CookieConfigError::SameSiteNoneInsecure));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieConfigError {
    /// The name is empty or holds a character a cookie name cannot have (RFC 6265 `token`:
    /// letters, digits and ``!#$%&'*+-.^_`|~``).
    #[error("`{name}` is not a valid cookie name: use letters, digits and !#$%&'*+-.^_`|~")]
    InvalidName {
        /// The configured name.
        name: String,
    },
    /// The `Domain` is empty or holds a character a host name cannot have.
    #[error("`{domain}` is not a valid cookie domain: use a host name such as `example.com`")]
    InvalidDomain {
        /// The configured domain.
        domain: String,
    },
    /// The `Path` does not start with `/`, or holds `;` or a control character.
    #[error(
        "`{path}` is not a valid cookie path: it must start with `/` and hold no `;` or control character"
    )]
    InvalidPath {
        /// The configured path.
        path: String,
    },
    /// A `__Host-` cookie without `Secure`, with a `Domain`, or with a `Path` other than `/`:
    /// browsers would refuse it.
    #[error(
        "a `__Host-` cookie needs Secure, Path=/ and no Domain, or browsers refuse it: {problem}"
    )]
    HostPrefix {
        /// What is wrong.
        problem: &'static str,
    },
    /// A `__Secure-` cookie without `Secure`: browsers would refuse it.
    #[error("a `__Secure-` cookie needs Secure, or browsers refuse it")]
    SecurePrefix,
    /// `SameSite=None` without `Secure`: browsers would refuse it.
    #[error("SameSite=None needs Secure, or browsers refuse the cookie")]
    SameSiteNoneInsecure,
}

/// The session cookie's name and attributes.
///
/// The defaults are the safe ones: name `session`, `HttpOnly` (no script can read it),
/// `Secure` (HTTPS only), `SameSite=Lax`, `Path=/`, no `Domain` (this host only).
/// For local development over plain HTTP, turn `Secure` off.
///
/// ```
/// use sessions::{CookieConfig, SameSite};
/// let config = CookieConfig::new()
///     .name("sid")
///     .host_prefix()
///     .same_site(SameSite::Strict);
/// assert_eq!(config.cookie_name(), "__Host-sid");
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The name as configured, without a prefix added by `host_prefix`.
    name: String,
    /// Whether `host_prefix` was asked for.
    host_prefix: bool,
    /// The name the cookie is sent under: `name`, with `__Host-` when asked for.
    full_name: String,
    domain: Option<String>,
    path: String,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieConfig {
    /// The defaults: `session`, `HttpOnly`, `Secure`, `SameSite=Lax`, `Path=/`, no `Domain`.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// let config = CookieConfig::new();
    /// assert_eq!(config.cookie_name(), "session");
    /// assert!(config.is_secure() && config.is_http_only());
    /// ```
    pub fn new() -> Self {
        Self {
            name: "session".to_owned(),
            host_prefix: false,
            full_name: "session".to_owned(),
            domain: None,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
        }
    }

    /// Sets the cookie's name. After [`host_prefix`](Self::host_prefix) the prefix stays.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert_eq!(CookieConfig::new().name("sid").cookie_name(), "sid");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.full_name = self.compute_full_name();
        self
    }

    /// Sets the `Domain` attribute: the cookie is then sent to that domain and its
    /// subdomains. Without it (the default) it goes to this exact host only.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// let config = CookieConfig::new().domain("example.com");
    /// assert_eq!(config.get_domain(), Some("example.com"));
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets the `Path` attribute (default `/`).
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert_eq!(CookieConfig::new().path("/app").get_path(), "/app");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets `Secure` (default on): the browser sends the cookie over HTTPS only. Turn it off
    /// only for local development over plain HTTP.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert!(!CookieConfig::new().secure(false).is_secure());
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `HttpOnly` (default on): scripts in the page cannot read the cookie.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert!(!CookieConfig::new().http_only(false).is_http_only());
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets `SameSite` (default [`SameSite::Lax`]).
    ///
    /// ```
    /// use sessions::{CookieConfig, SameSite};
    /// let config = CookieConfig::new().same_site(SameSite::Strict);
    /// assert_eq!(config.get_same_site(), SameSite::Strict);
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Names the cookie `__Host-<name>` and sets what browsers require of such a cookie:
    /// `Secure`, `Path=/`, no `Domain`. No subdomain and no plain-HTTP page can then set or
    /// shadow the session cookie. Setting a domain, another path or `secure(false)` afterwards
    /// makes [`validate`](Self::validate) fail.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// let config = CookieConfig::new().domain("example.com").host_prefix();
    /// assert_eq!(config.cookie_name(), "__Host-session");
    /// assert_eq!(config.get_domain(), None);
    /// assert!(config.validate().is_ok());
    /// assert!(config.path("/app").validate().is_err());
    /// ```
    pub fn host_prefix(mut self) -> Self {
        self.host_prefix = true;
        self.secure = true;
        self.path = "/".to_owned();
        self.domain = None;
        self.full_name = self.compute_full_name();
        self
    }

    /// Checks that browsers will accept the cookie as configured: a valid name, domain and
    /// path, the `__Host-` and `__Secure-` prefix rules, and `Secure` with `SameSite=None`.
    /// The session layer calls this when it is built.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// use sessions::error::CookieConfigError;
    /// assert!(CookieConfig::new().validate().is_ok());
    /// assert!(matches!(
    ///     CookieConfig::new().name("my session").validate(),
    ///     Err(CookieConfigError::InvalidName { .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), CookieConfigError> {
        let name = &self.full_name;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(CookieConfigError::InvalidName { name: name.clone() });
        }
        if let Some(domain) = &self.domain {
            let host = domain.strip_prefix('.').unwrap_or(domain);
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(CookieConfigError::InvalidDomain {
                    domain: domain.clone(),
                });
            }
        }
        let path_valid = self.path.starts_with('/')
            && self
                .path
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b';');
        if !path_valid {
            return Err(CookieConfigError::InvalidPath {
                path: self.path.clone(),
            });
        }
        if starts_with_ignore_case(name, HOST_PREFIX) {
            if !self.secure {
                return Err(CookieConfigError::HostPrefix {
                    problem: "Secure is off",
                });
            }
            if self.domain.is_some() {
                return Err(CookieConfigError::HostPrefix {
                    problem: "a Domain is set",
                });
            }
            if self.path != "/" {
                return Err(CookieConfigError::HostPrefix {
                    problem: "the Path is not /",
                });
            }
        }
        if starts_with_ignore_case(name, SECURE_PREFIX) && !self.secure {
            return Err(CookieConfigError::SecurePrefix);
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(CookieConfigError::SameSiteNoneInsecure);
        }
        Ok(())
    }

    /// The name the cookie is sent under, prefix included.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert_eq!(CookieConfig::new().host_prefix().name("sid").cookie_name(), "__Host-sid");
    /// ```
    pub fn cookie_name(&self) -> &str {
        &self.full_name
    }

    /// The `Domain` attribute, if one is set.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert_eq!(CookieConfig::new().get_domain(), None);
    /// ```
    pub fn get_domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The `Path` attribute.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert_eq!(CookieConfig::new().get_path(), "/");
    /// ```
    pub fn get_path(&self) -> &str {
        &self.path
    }

    /// Whether `Secure` is set.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert!(CookieConfig::new().is_secure());
    /// ```
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether `HttpOnly` is set.
    ///
    /// ```
    /// use sessions::CookieConfig;
    /// assert!(CookieConfig::new().is_http_only());
    /// ```
    pub fn is_http_only(&self) -> bool {
        self.http_only
    }

    /// The `SameSite` attribute.
    ///
    /// ```
    /// use sessions::{CookieConfig, SameSite};
    /// assert_eq!(CookieConfig::new().get_same_site(), SameSite::Lax);
    /// ```
    pub fn get_same_site(&self) -> SameSite {
        self.same_site
    }

    /// Our cookie's value, from all `Cookie` headers of a request, in order; the first
    /// non-empty match wins (browsers send the cookie with the most specific path first).
    /// Malformed pairs, non-UTF-8 headers and empty values are skipped; a value in double
    /// quotes is returned without them.
    pub(crate) fn find<'a>(&self, headers: impl Iterator<Item = &'a [u8]>) -> Option<&'a str> {
        find_named(&self.full_name, headers)
    }

    /// The name of this cookie's companion `suffix` (`session_written`): sent beside it, with
    /// its attributes.
    pub(crate) fn companion_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.full_name)
    }

    /// The value of the companion cookie named `name` (see [`companion_name`](Self::companion_name)),
    /// found like [`find`](Self::find).
    pub(crate) fn find_companion<'a>(
        &self,
        name: &str,
        headers: impl Iterator<Item = &'a [u8]>,
    ) -> Option<&'a str> {
        find_named(name, headers)
    }

    /// The `Set-Cookie` header that stores `value` in the companion cookie named `name` for
    /// `max_age`, with this cookie's attributes.
    pub(crate) fn set_companion(&self, name: &str, value: &str, max_age: Duration) -> HeaderValue {
        self.render_as(name, value, Some(max_age.as_secs()))
    }

    /// The `Set-Cookie` header that stores `value`. `max_age: None` makes a browser-session
    /// cookie (no `Max-Age`: the browser drops it when it closes); otherwise `Max-Age` is the
    /// whole seconds of `max_age`.
    pub(crate) fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> HeaderValue {
        self.render(value, max_age.map(|age| age.as_secs()))
    }

    /// The `Set-Cookie` header that clears the cookie: an empty value, `Max-Age=0`, and the
    /// same `Path` and `Domain` (a browser only replaces a cookie whose path and domain match).
    pub(crate) fn removal(&self) -> HeaderValue {
        self.render("", Some(0))
    }

    /// Writes the header in one buffer (this runs on every response that sets the cookie), in
    /// the `cookie` crate's attribute order.
    fn render(&self, value: &str, max_age_secs: Option<u64>) -> HeaderValue {
        self.render_as(&self.full_name, value, max_age_secs)
    }

    /// [`render`](Self::render) for the cookie named `name`.
    fn render_as(&self, name: &str, value: &str, max_age_secs: Option<u64>) -> HeaderValue {
        use std::fmt::Write;
        let mut out = String::with_capacity(name.len() + value.len() + 80);
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        out.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; Path=");
        out.push_str(&self.path);
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain.strip_prefix('.').unwrap_or(domain));
        }
        if let Some(seconds) = max_age_secs {
            let seconds = seconds.min(i64::MAX as u64);
            let _ = write!(out, "; Max-Age={seconds}");
        }
        HeaderValue::from_str(&out).unwrap_or_else(|_| {
            tracing::error!(
                cookie = %name,
                "the session cookie cannot be sent: its name or attributes hold characters a \
                 header cannot; call CookieConfig::validate"
            );
            HeaderValue::from_static("")
        })
    }

    fn compute_full_name(&self) -> String {
        if self.host_prefix && !starts_with_ignore_case(&self.name, HOST_PREFIX) {
            format!("{HOST_PREFIX}{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// The value of the cookie `name` among `headers`' cookies: the first non-empty one, without
/// double quotes; malformed pairs and non-UTF-8 headers skipped.
fn find_named<'a>(name: &str, headers: impl Iterator<Item = &'a [u8]>) -> Option<&'a str> {
    // A plain scan of the bytes: this runs on every request, and needs no allocation. The
    // separators and the whitespace around names and values are ASCII (RFC 6265), so every
    // piece cut at them out of a UTF-8 header is UTF-8 too.
    headers
        .filter_map(|header| std::str::from_utf8(header).ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| {
            let at = pair.bytes().position(|b| b == b'=')?;
            Some((&pair[..at], &pair[at + 1..]))
        })
        .filter(|(found, _)| found.trim_ascii() == name)
        .map(|(_, value)| trim_quotes(value.trim_ascii()))
        .find(|value| !value.is_empty())
}

/// Whether `b` may appear in a cookie name (RFC 6265 `token`, RFC 9110 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn trim_quotes(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests;

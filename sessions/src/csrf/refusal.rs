//! [`CsrfRefusal`]: why the CSRF check refused a request.

/// Why the CSRF check refused a request (a 403). The client gets [`message`](Self::message) as
/// a `text/plain` body; an [`on_rejection`](crate::SessionLayer::on_rejection) hook sees it in
/// [`SessionRejection::Csrf`](crate::SessionRejection::Csrf).
///
/// ```
/// use sessions::csrf::CsrfRefusal;
/// assert!(CsrfRefusal::CrossSite.message().contains("another site"));
/// assert_eq!(CsrfRefusal::TokenInvalid.reason(), "csrf_token_invalid");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CsrfRefusal {
    /// `Sec-Fetch-Site` says a page of another site sent it (`cross-site`, or `same-site`: a
    /// sibling subdomain), and it carried no valid token.
    CrossSite,
    /// No `Sec-Fetch-Site`, and `Origin` names another origin than the request's own (nor a
    /// trusted one), and it carried no valid token.
    OtherOrigin,
    /// A token is required ([`Csrf::require_token`](super::Csrf::require_token)) and none
    /// came, in the `x-csrf-token` header or a `csrf_token` form field.
    TokenMissing,
    /// A token came but is not one of this session's: a page from before a login (a
    /// `cycle_id()`), of another session, or altered.
    TokenInvalid,
    /// The form is longer than the bound its token is looked for in
    /// ([`Csrf::form_limit`](super::Csrf::form_limit)), or could not be read.
    FormTooLarge,
}

impl CsrfRefusal {
    /// The text the client gets: fixed, it says why and repeats nothing the request sent.
    ///
    /// ```
    /// use sessions::csrf::CsrfRefusal;
    /// assert!(CsrfRefusal::TokenMissing.message().contains("csrf_token"));
    /// ```
    pub fn message(self) -> &'static str {
        match self {
            CsrfRefusal::CrossSite => {
                "forbidden: a page of another site may not send this request (Sec-Fetch-Site)"
            }
            CsrfRefusal::OtherOrigin => {
                "forbidden: a page of another origin may not send this request (Origin)"
            }
            CsrfRefusal::TokenMissing => {
                "forbidden: this request needs the page's CSRF token (a csrf_token form field or an x-csrf-token header)"
            }
            CsrfRefusal::TokenInvalid => {
                "forbidden: the CSRF token is not this session's; reload the page and try again"
            }
            CsrfRefusal::FormTooLarge => {
                "forbidden: the form is too large to look for its CSRF token in; send it in the x-csrf-token header"
            }
        }
    }

    /// A short name of the cause (a log field), low-cardinality by construction.
    ///
    /// ```
    /// use sessions::csrf::CsrfRefusal;
    /// assert_eq!(CsrfRefusal::CrossSite.reason(), "csrf_cross_site");
    /// ```
    pub fn reason(self) -> &'static str {
        match self {
            CsrfRefusal::CrossSite => "csrf_cross_site",
            CsrfRefusal::OtherOrigin => "csrf_other_origin",
            CsrfRefusal::TokenMissing => "csrf_token_missing",
            CsrfRefusal::TokenInvalid => "csrf_token_invalid",
            CsrfRefusal::FormTooLarge => "csrf_form_too_large",
        }
    }
}

impl std::fmt::Display for CsrfRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CsrfRefusal {}

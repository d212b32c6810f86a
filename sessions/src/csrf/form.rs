//! The token in an HTML form's body: whether a request's body is a form
//! (`application/x-www-form-urlencoded`), the `csrf_token` field in it, and reading such a body
//! with a bound and handing it on intact, for each framework's body type.
//!
//! A body is read only when a token is needed and none came in the `x-csrf-token` header.

use std::borrow::Cow;

use bytes::Bytes;

use super::FORM_FIELD;

/// Whether a `Content-Type` value names an urlencoded form (parameters such as `charset` are
/// allowed; case is not significant).
pub(crate) fn is_form(content_type: Option<&[u8]>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let essence = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// The value of the first `csrf_token` field of an urlencoded form body, decoded.
pub(crate) fn token_in(body: &[u8]) -> Option<Cow<'_, str>> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == FORM_FIELD)
        .map(|(_, value)| value)
}

/// What reading a body for its token gave.
#[derive(Debug)]
pub(crate) enum FormRead {
    /// The whole body (it was put back for the handler).
    Read(Bytes),
    /// The body is longer than the bound (the request is refused: what was read is gone).
    TooLarge,
    /// The body could not be read (the client went away).
    Failed,
    /// A body type this crate cannot read and put back (see `Csrf` docs): the token must come
    /// in the header.
    Unreadable,
}

/// Reading a tower request's body (its type is the service's own, so the known ones are
/// recognised at run time, as a rejection's text is written into them).
pub(crate) mod tower_body {
    use std::any::Any;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full, Limited};

    use super::FormRead;

    /// A body taken out of a request to be read.
    pub(crate) enum Taken {
        #[cfg(feature = "axum")]
        Axum(axum::body::Body),
        Full(Full<Bytes>),
        Bytes(Bytes),
    }

    /// Takes the body out of `body` (left empty), when its type is one this crate reads.
    pub(crate) fn take<B: 'static>(body: &mut B) -> Option<Taken> {
        let body: &mut dyn Any = body;
        #[cfg(feature = "axum")]
        if let Some(body) = body.downcast_mut::<axum::body::Body>() {
            return Some(Taken::Axum(std::mem::take(body)));
        }
        if let Some(body) = body.downcast_mut::<Full<Bytes>>() {
            return Some(Taken::Full(std::mem::take(body)));
        }
        if let Some(body) = body.downcast_mut::<Bytes>() {
            return Some(Taken::Bytes(std::mem::take(body)));
        }
        if let Some(body) = body.downcast_mut::<String>() {
            return Some(Taken::Bytes(Bytes::from(std::mem::take(body))));
        }
        if let Some(body) = body.downcast_mut::<Vec<u8>>() {
            return Some(Taken::Bytes(Bytes::from(std::mem::take(body))));
        }
        None
    }

    /// Reads a taken body, `limit` bytes at most.
    pub(crate) async fn read(taken: Taken, limit: usize) -> FormRead {
        let collected = match taken {
            #[cfg(feature = "axum")]
            Taken::Axum(body) => Limited::new(body, limit)
                .collect()
                .await
                .map(|c| c.to_bytes()),
            Taken::Full(body) => Limited::new(body, limit)
                .collect()
                .await
                .map(|c| c.to_bytes()),
            Taken::Bytes(bytes) if bytes.len() > limit => return FormRead::TooLarge,
            Taken::Bytes(bytes) => return FormRead::Read(bytes),
        };
        match collected {
            Ok(bytes) => FormRead::Read(bytes),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => FormRead::TooLarge,
            Err(_) => FormRead::Failed,
        }
    }

    /// Puts `bytes` back into `body` (of the type it was taken from), for the handler.
    pub(crate) fn put_back<B: 'static>(body: &mut B, bytes: Bytes) {
        let body: &mut dyn Any = body;
        #[cfg(feature = "axum")]
        if let Some(body) = body.downcast_mut::<axum::body::Body>() {
            *body = axum::body::Body::from(bytes);
            return;
        }
        if let Some(body) = body.downcast_mut::<Full<Bytes>>() {
            *body = Full::new(bytes);
        } else if let Some(body) = body.downcast_mut::<Bytes>() {
            *body = bytes;
        } else if let Some(body) = body.downcast_mut::<Vec<u8>>() {
            *body = bytes.into();
        } else if let Some(body) = body.downcast_mut::<String>() {
            // It was a `String` when taken, so its bytes are UTF-8.
            *body = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
}

/// Reading an actix-web request's payload.
#[cfg(feature = "actix")]
pub(crate) mod actix_payload {
    use actix_web::dev::ServiceRequest;
    use actix_web::{FromRequest, HttpMessage};

    use super::FormRead;

    /// Reads the payload of `request`, `limit` bytes at most, and puts it back for the handler.
    pub(crate) async fn read(request: &mut ServiceRequest, limit: usize) -> FormRead {
        let mut payload = request.take_payload();
        let Ok(stream) =
            actix_web::web::Payload::from_request(request.request(), &mut payload).await
        else {
            return FormRead::Failed;
        };
        match stream.to_bytes_limited(limit).await {
            Ok(Ok(bytes)) => {
                request.set_payload(actix_web::dev::Payload::from(bytes.clone()));
                FormRead::Read(bytes)
            }
            Ok(Err(_)) => FormRead::Failed,
            Err(_) => FormRead::TooLarge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_recognised_by_its_content_type() {
        let forms: [&[u8]; 4] = [
            b"application/x-www-form-urlencoded",
            b"application/x-www-form-urlencoded; charset=UTF-8",
            b"Application/X-WWW-Form-Urlencoded",
            b"  application/x-www-form-urlencoded ;charset=utf-8",
        ];
        for value in forms {
            assert!(is_form(Some(value)), "{value:?}");
        }
        let others: [&[u8]; 5] = [
            b"application/json",
            b"multipart/form-data; boundary=x",
            b"text/plain",
            b"",
            b"application/x-www-form-urlencodedX",
        ];
        for value in others {
            assert!(!is_form(Some(value)), "{value:?}");
        }
        assert!(!is_form(None));
    }

    #[test]
    fn the_token_field_is_found_anywhere_in_the_form() {
        assert_eq!(token_in(b"csrf_token=abc").as_deref(), Some("abc"));
        assert_eq!(
            token_in(b"sku=apple&qty=2&csrf_token=a-b_c").as_deref(),
            Some("a-b_c")
        );
        assert_eq!(token_in(b"csrf%5Ftoken=abc").as_deref(), Some("abc"));
        assert_eq!(token_in(b"csrf_token=a%2Bb").as_deref(), Some("a+b"));
        assert_eq!(token_in(b"csrf_token=1&csrf_token=2").as_deref(), Some("1"));
        assert_eq!(token_in(b"csrf_token=").as_deref(), Some(""));
        assert_eq!(token_in(b"sku=apple").as_deref(), None);
        assert_eq!(token_in(b"xcsrf_token=abc").as_deref(), None);
        assert_eq!(token_in(b"").as_deref(), None);
        assert_eq!(token_in(&[0xff, b'=', 0xfe]).as_deref(), None);
    }

    #[tokio::test]
    async fn a_known_tower_body_is_read_and_put_back_intact() {
        let form = Bytes::from_static(b"sku=apple&csrf_token=abc");
        let mut full = http_body_util::Full::new(form.clone());
        let taken = tower_body::take(&mut full).expect("a body this crate reads");
        let FormRead::Read(read) = tower_body::read(taken, 1024).await else {
            panic!("read");
        };
        assert_eq!(read, form);
        tower_body::put_back(&mut full, read);
        let again = http_body_util::BodyExt::collect(full)
            .await
            .expect("a full body")
            .to_bytes();
        assert_eq!(again, form);

        let mut text = String::from("a=1");
        let taken = tower_body::take(&mut text).expect("a string body");
        assert!(text.is_empty(), "taken out");
        let FormRead::Read(read) = tower_body::read(taken, 1024).await else {
            panic!("read");
        };
        tower_body::put_back(&mut text, read);
        assert_eq!(text, "a=1");
    }

    #[cfg(feature = "axum")]
    #[tokio::test]
    async fn an_axum_body_is_read_within_its_bound() {
        let mut body = axum::body::Body::from("csrf_token=abc");
        let taken = tower_body::take(&mut body).expect("axum's body");
        let FormRead::Read(read) = tower_body::read(taken, 14).await else {
            panic!("a body of exactly the bound is read");
        };
        tower_body::put_back(&mut body, read);
        let again = axum::body::to_bytes(body, 100).await.expect("readable");
        assert_eq!(&again[..], b"csrf_token=abc");

        let mut body = axum::body::Body::from("csrf_token=abc");
        let taken = tower_body::take(&mut body).expect("axum's body");
        assert!(matches!(
            tower_body::read(taken, 13).await,
            FormRead::TooLarge
        ));
    }

    #[tokio::test]
    async fn an_unknown_tower_body_is_left_alone() {
        let mut body = ();
        assert!(tower_body::take(&mut body).is_none());
        let mut bytes = Bytes::from_static(b"0123456789");
        let taken = tower_body::take(&mut bytes).expect("bytes");
        assert!(matches!(
            tower_body::read(taken, 9).await,
            FormRead::TooLarge
        ));
    }
}

//! Reading credentials from the `Authorization` header: HTTP Basic (Terraform's and
//! OpenTofu's `username`/`password`, user = principal, password = token) and `Bearer <token>`
//! (for the JSON API, scripts and Prometheus).

use axum::http::{HeaderMap, header};
use base64::Engine;

/// Credentials as presented, before they are checked.
#[derive(PartialEq, Eq)]
pub enum Credentials {
    Basic { principal: String, token: String },
    Bearer { token: String },
}

impl std::fmt::Debug for Credentials {
    // Never print the token, whatever logs a `Debug` ends up in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { principal, .. } => write!(f, "Basic({principal:?}, <token>)"),
            Credentials::Bearer { .. } => write!(f, "Bearer(<token>)"),
        }
    }
}

/// The credentials in `headers`: `Ok(None)` when there are none, `Err` with the reason when
/// the header is malformed. The reasons never quote the header.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<Credentials>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or("the Authorization header has no scheme")?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| "the Basic credentials are not valid base64")?;
        let text = String::from_utf8(decoded).map_err(|_| "the Basic credentials are not UTF-8")?;
        let (principal, token) = text
            .split_once(':')
            .ok_or("the Basic credentials have no `:` between user name and password")?;
        if principal.is_empty() {
            return Err("the Basic credentials have an empty user name");
        }
        Ok(Some(Credentials::Basic {
            principal: principal.to_owned(),
            token: token.to_owned(),
        }))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err("the Bearer token is empty");
        }
        Ok(Some(Credentials::Bearer {
            token: rest.to_owned(),
        }))
    } else {
        Err("unsupported Authorization scheme; use Basic or Bearer")
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn parse(values: &[&str]) -> Result<Option<Credentials>, &'static str> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        from_headers(&headers)
    }

    #[test]
    fn reads_basic_and_bearer() {
        assert_eq!(parse(&[]), Ok(None));
        // "ci:slt_x:y": the password may itself contain colons.
        let basic = base64::engine::general_purpose::STANDARD.encode("ci:slt_x:y");
        assert_eq!(
            parse(&[&format!("Basic {basic}")]),
            Ok(Some(Credentials::Basic {
                principal: "ci".into(),
                token: "slt_x:y".into()
            }))
        );
        assert_eq!(
            parse(&["bearer  slt_abc"]),
            Ok(Some(Credentials::Bearer {
                token: "slt_abc".into()
            }))
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        let no_colon = base64::engine::general_purpose::STANDARD.encode("ci");
        let empty_user = base64::engine::general_purpose::STANDARD.encode(":tok");
        for bad in [
            "Basic",
            "Basic !!!",
            &format!("Basic {no_colon}"),
            &format!("Basic {empty_user}"),
            "Bearer ",
            "Digest x",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
        assert!(parse(&["Bearer a", "Bearer b"]).is_err());
        let secret = Credentials::Bearer {
            token: "slt_secret".into(),
        };
        assert!(!format!("{secret:?}").contains("slt_secret"));
    }
}

//! Turns (method, path) into the state and the action asked for, before any handler runs.
//!
//! LOCK and UNLOCK are extension methods that axum's method router cannot express, so every
//! request comes through one fallback and is classified here.

use axum::http::Method;
use statelock_core::StateKey;

use crate::error::ApiError;

const STATES: &str = "/v1/states/";
const LOCKS: &str = "/v1/locks/";

/// What a request asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ReadState,
    WriteState,
    DeleteState,
    Lock,
    Unlock,
}

/// A classified request: which state, and what to do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub key: StateKey,
    pub action: Action,
}

impl Endpoint {
    /// Classifies a request; `path` is the raw (percent-encoded) URI path.
    pub fn parse(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
        let (rest, action) = if let Some(rest) = path.strip_prefix(STATES) {
            (rest, state_action(method)?)
        } else if let Some(rest) = path.strip_prefix(LOCKS) {
            (rest, lock_action(method)?)
        } else {
            return Err(ApiError::NoEndpoint(path.to_owned()));
        };
        let decoded = percent_decode(rest)?;
        let key = StateKey::parse(&decoded).map_err(ApiError::BadKey)?;
        statelock_state::history::check_server_key(&key)?;
        Ok(Endpoint { key, action })
    }
}

fn state_action(method: &Method) -> Result<Action, ApiError> {
    Ok(match method.as_str() {
        "GET" => Action::ReadState,
        "POST" | "PUT" => Action::WriteState,
        "DELETE" => Action::DeleteState,
        "LOCK" => Action::Lock,
        "UNLOCK" => Action::Unlock,
        other => {
            return Err(ApiError::MethodNotAllowed {
                method: other.to_owned(),
                allow: "GET, POST, PUT, DELETE, LOCK, UNLOCK",
            });
        }
    })
}

fn lock_action(method: &Method) -> Result<Action, ApiError> {
    Ok(match method.as_str() {
        "PUT" | "POST" | "LOCK" => Action::Lock,
        "DELETE" | "UNLOCK" => Action::Unlock,
        other => {
            return Err(ApiError::MethodNotAllowed {
                method: other.to_owned(),
                allow: "PUT, POST, DELETE, LOCK, UNLOCK",
            });
        }
    })
}

/// Decodes `%XX` escapes, so `%2e%2e` is checked as `..` and `%2F` as `/`: the key rules
/// apply to the key as stored, not as spelled in the URL.
pub(crate) fn percent_decode(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "invalid state key: bad percent-escape at byte {i} of {raw:?}"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::BadRequest(format!(
            "invalid state key: {raw:?} does not decode to UTF-8"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, path: &str) -> Result<Endpoint, ApiError> {
        Endpoint::parse(&Method::from_bytes(method.as_bytes()).unwrap(), path)
    }

    #[test]
    fn classifies_every_method_on_both_surfaces() {
        let cases = [
            ("GET", "/v1/states/a/b.tfstate", Action::ReadState),
            ("POST", "/v1/states/a/b.tfstate", Action::WriteState),
            ("PUT", "/v1/states/a/b.tfstate", Action::WriteState),
            ("DELETE", "/v1/states/a/b.tfstate", Action::DeleteState),
            ("LOCK", "/v1/states/a/b.tfstate", Action::Lock),
            ("UNLOCK", "/v1/states/a/b.tfstate", Action::Unlock),
            ("PUT", "/v1/locks/a/b.tfstate", Action::Lock),
            ("POST", "/v1/locks/a/b.tfstate", Action::Lock),
            ("DELETE", "/v1/locks/a/b.tfstate", Action::Unlock),
        ];
        for (method, path, action) in cases {
            let ep = parse(method, path).unwrap();
            assert_eq!(ep.action, action, "{method} {path}");
            assert_eq!(ep.key.as_str(), "a/b.tfstate");
        }
    }

    #[test]
    fn decodes_before_checking_key_rules() {
        assert_eq!(
            parse("GET", "/v1/states/team%20a%2Fprod.tfstate")
                .unwrap()
                .key
                .as_str(),
            "team a/prod.tfstate"
        );
        for bad in [
            "/v1/states/a/../b",
            "/v1/states/a/%2e%2e/b",
            "/v1/states/%2E%2E",
            "/v1/states/x.tflock",
            "/v1/states/a%00b",
        ] {
            assert!(
                matches!(parse("GET", bad), Err(ApiError::BadKey(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("GET", "/v1/states/a%zz"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse("GET", "/v1/states/%ff"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn refuses_unknown_paths_and_methods() {
        assert!(matches!(
            parse("GET", "/v1/other/x"),
            Err(ApiError::NoEndpoint(_))
        ));
        assert!(matches!(
            parse("PATCH", "/v1/states/x"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            parse("GET", "/v1/locks/x"),
            Err(ApiError::MethodNotAllowed { .. })
        ));
    }
}

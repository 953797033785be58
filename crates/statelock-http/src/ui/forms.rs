//! Query strings and `application/x-www-form-urlencoded` bodies as name → value, for the few
//! small fields the pages and forms carry (keys, version IDs, the CSRF token).

use axum::body::Body;
use axum::http::request::Parts;
use std::time::Duration;

use super::UiError;

/// Form bodies are a few hundred bytes (a key, an ID, a token); anything larger is not ours.
const MAX_FORM_BODY: usize = 16 * 1024;

/// Names and values in their order; the first of a repeated name wins.
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `a=1&b=x%2Fy`; `+` is a space. Malformed escapes are refused.
    pub fn parse(text: &str) -> Result<Form, UiError> {
        let mut pairs = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Form(pairs))
    }

    /// The request's query string.
    pub fn query(parts: &Parts) -> Result<Form, UiError> {
        Form::parse(parts.uri.query().unwrap_or(""))
    }

    /// A form POST's body.
    pub async fn body(parts: &Parts, body: Body) -> Result<Form, UiError> {
        let bytes = crate::body::read_limited(
            &parts.headers,
            body,
            MAX_FORM_BODY,
            "form",
            Duration::from_secs(10),
        )
        .await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| UiError::bad_request("the form body is not UTF-8"))?;
        Form::parse(text)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, treating an empty one as absent.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

fn decode(raw: &str) -> Result<String, UiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        UiError::bad_request(format!("bad percent-escape in {raw:?}"))
                    })?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| UiError::bad_request(format!("{raw:?} is not UTF-8")))
}

/// Percent-encodes `value` for a query string (everything but unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes_round_trip() {
        let f = Form::parse("key=team%2Fa+b.tfstate&to=&x=1&x=2").unwrap();
        assert_eq!(f.get("key"), Some("team/a b.tfstate"));
        assert_eq!(f.get("to"), Some(""));
        assert_eq!(f.non_empty("to"), None);
        assert_eq!(f.get("x"), Some("1"), "the first of a repeated name wins");
        let key = "env:/prod/a&b=c.tfstate";
        let back = Form::parse(&format!("key={}", encode(key))).unwrap();
        assert_eq!(back.get("key"), Some(key));
        assert!(Form::parse("key=%zz").is_err());
        assert!(Form::parse("key=%ff").is_err(), "not UTF-8");
    }
}

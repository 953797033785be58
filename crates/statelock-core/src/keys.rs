//! Object keys of states and their locks (spec §2.1).
//!
//! A state lives at its key; its lock at the key plus `.tflock`; the DynamoDB lock item and the
//! lock record's `Path` use `<bucket>/<key>`. Workspaces other than `default` live under
//! `<workspace_key_prefix>/<workspace>/<key>`, joined and cleaned as Go's `path.Join` does.

use std::fmt;

/// Suffix of a lock object's key: the lock of `a/b.tfstate` is `a/b.tfstate.tflock`.
pub const LOCK_SUFFIX: &str = ".tflock";

/// Longest key accepted, in bytes (S3's own limit).
pub const MAX_KEY_LEN: usize = 1024;

/// A validated state key: safe to use as an object key on every store, and never a lock key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey(String);

/// Which key rule a string breaks. The message names the rule, for 400 answers and CLI errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("state key is empty")]
    Empty,
    #[error("state key is {len} bytes long; the limit is {MAX_KEY_LEN}")]
    TooLong { len: usize },
    #[error("state key contains a control character at byte {at}")]
    ControlCharacter { at: usize },
    #[error("state key must not start with '/'")]
    LeadingSlash,
    #[error("state key must not end with '/'")]
    TrailingSlash,
    #[error("state key must not contain '//'")]
    EmptySegment,
    #[error("state key must not contain a '.' or '..' path segment")]
    DotSegment,
    #[error("state key must not end with '{LOCK_SUFFIX}': that is where its lock lives")]
    LockSuffix,
    #[error("workspace_key_prefix must not start or end with '/'")]
    PrefixSlash,
}

impl StateKey {
    /// Checks `key` against Terraform's rules (not empty, no leading or trailing `/`, no `//`)
    /// and statelock's (at most 1024 bytes, no control characters, no `.`/`..` segments, no
    /// `.tflock` suffix), reporting the first rule broken.
    pub fn parse(key: &str) -> Result<StateKey, KeyError> {
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong { len: key.len() });
        }
        if let Some((at, _)) = key.char_indices().find(|(_, c)| c.is_control()) {
            return Err(KeyError::ControlCharacter { at });
        }
        if key.starts_with('/') {
            return Err(KeyError::LeadingSlash);
        }
        if key.ends_with('/') {
            return Err(KeyError::TrailingSlash);
        }
        if key.contains("//") {
            return Err(KeyError::EmptySegment);
        }
        if key.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(KeyError::DotSegment);
        }
        if key.ends_with(LOCK_SUFFIX) {
            return Err(KeyError::LockSuffix);
        }
        Ok(StateKey(key.to_owned()))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of this state's lock object: the state key plus `.tflock`.
    pub fn lock_key(&self) -> String {
        format!("{}{LOCK_SUFFIX}", self.0)
    }

    /// The lock record's `Path` (and DynamoDB `LockID`) for this state in `bucket`:
    /// `<bucket>/<key>`, not the lock object's key.
    pub fn lock_path(&self, bucket: &str) -> String {
        format!("{bucket}/{}", self.0)
    }

    /// The state key a lock object key belongs to, if `key` is a lock key.
    pub fn from_lock_key(key: &str) -> Option<Result<StateKey, KeyError>> {
        key.strip_suffix(LOCK_SUFFIX).map(StateKey::parse)
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StateKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The object key that Terraform's S3 backend uses for `key` in `workspace`.
///
/// `default` keeps `key` unchanged; any other workspace gives
/// `path.Join(workspace_key_prefix, workspace, key)`, so `("env:", "dev", "a/b.tfstate")`
/// gives `env:/dev/a/b.tfstate` and an empty prefix gives `dev/a/b.tfstate`.
pub fn workspace_state_key(
    workspace_key_prefix: &str,
    workspace: &str,
    key: &str,
) -> Result<StateKey, KeyError> {
    if workspace_key_prefix.starts_with('/') || workspace_key_prefix.ends_with('/') {
        return Err(KeyError::PrefixSlash);
    }
    if workspace == "default" {
        return StateKey::parse(key);
    }
    StateKey::parse(&go_path_join(&[workspace_key_prefix, workspace, key]))
}

/// Go's `path.Join`: joins the non-empty elements with `/` and cleans the result.
fn go_path_join(elems: &[&str]) -> String {
    let joined = elems
        .iter()
        .filter(|e| !e.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    go_path_clean(&joined)
}

/// Go's `path.Clean`: collapses `//`, drops `.`, resolves `..` lexically.
fn go_path_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_terraform_style_keys() {
        for ok in [
            "terraform.tfstate",
            "team-a/prod/terraform.tfstate",
            "env:/dev/app.tfstate",
            "a.tflock.tfstate",
            "with space/and:colon/ünïcode",
        ] {
            assert_eq!(StateKey::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn names_the_broken_rule() {
        let cases: &[(&str, KeyError)] = &[
            ("", KeyError::Empty),
            ("/a", KeyError::LeadingSlash),
            ("a/", KeyError::TrailingSlash),
            ("a//b", KeyError::EmptySegment),
            ("a/./b", KeyError::DotSegment),
            ("../etc/passwd", KeyError::DotSegment),
            ("a/..", KeyError::DotSegment),
            ("..", KeyError::DotSegment),
            ("a/b.tfstate.tflock", KeyError::LockSuffix),
            ("a\nb", KeyError::ControlCharacter { at: 1 }),
            ("a\u{7f}", KeyError::ControlCharacter { at: 1 }),
        ];
        for (key, want) in cases {
            assert_eq!(StateKey::parse(key).unwrap_err(), *want, "{key:?}");
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            StateKey::parse(&long).unwrap_err(),
            KeyError::TooLong { len: 1025 }
        );
        assert!(StateKey::parse(&"k".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn lock_key_and_path_follow_the_s3_backend() {
        let k = StateKey::parse("env:/dev/app.tfstate").unwrap();
        assert_eq!(k.lock_key(), "env:/dev/app.tfstate.tflock");
        assert_eq!(k.lock_path("mybucket"), "mybucket/env:/dev/app.tfstate");
        assert_eq!(
            StateKey::from_lock_key("a/b.tfstate.tflock")
                .unwrap()
                .unwrap()
                .as_str(),
            "a/b.tfstate"
        );
        assert!(StateKey::from_lock_key("a/b.tfstate").is_none());
    }

    #[test]
    fn workspace_keys_match_path_join() {
        let k = |p, w, key| workspace_state_key(p, w, key).map(|k| k.as_str().to_owned());
        assert_eq!(k("env:", "default", "a/b.tfstate").unwrap(), "a/b.tfstate");
        assert_eq!(
            k("env:", "dev", "a/b.tfstate").unwrap(),
            "env:/dev/a/b.tfstate"
        );
        assert_eq!(k("", "dev", "a/b.tfstate").unwrap(), "dev/a/b.tfstate");
        assert_eq!(
            k("custom/ws", "prod", "x.tfstate").unwrap(),
            "custom/ws/prod/x.tfstate"
        );
        // path.Join cleans: a `..` workspace name walks up a level, as it does in Go.
        assert_eq!(k("env:", "..", "x.tfstate").unwrap(), "x.tfstate");
        assert_eq!(k("/env:", "dev", "x").unwrap_err(), KeyError::PrefixSlash);
        assert_eq!(k("env:/", "dev", "x").unwrap_err(), KeyError::PrefixSlash);
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/..", "."),
            ("/", "/"),
            ("a/b/", "a/b"),
        ] {
            assert_eq!(go_path_clean(input), want, "{input}");
        }
    }
}

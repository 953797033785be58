//! The key rules that every adapter enforces before it touches anything.
//!
//! S3 accepts almost any key, but a local directory must not be escaped and every adapter
//! must refuse the same keys, so the rules are the intersection: what is safe as a relative
//! path on a POSIX file system and meaningful as an S3 key.

use crate::error::StoreError;

/// Longest key accepted, in bytes (S3's own limit).
pub const MAX_OBJECT_KEY_LEN: usize = 1024;

/// Longest `/`-separated segment accepted, in bytes.
pub const MAX_SEGMENT_LEN: usize = 253;

/// Checks `key` against the port's key rules, naming `store` in the error.
///
/// A key is non-empty, at most 1024 bytes, has no control characters, does not start or end
/// with `/`, has no empty, `.` or `..` segments, and no segment longer than 253 bytes (the
/// usual 255-byte file-name limit, less the two-byte suffix the local-disk store adds).
pub fn check_key(store: &str, key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        Some("key is empty")
    } else if key.len() > MAX_OBJECT_KEY_LEN {
        Some("key is longer than 1024 bytes")
    } else if key.chars().any(char::is_control) {
        Some("key contains a control character")
    } else if key.starts_with('/') || key.ends_with('/') {
        Some("key starts or ends with '/'")
    } else {
        key.split('/').find_map(|seg| match seg {
            "" => Some("key contains an empty segment ('//')"),
            "." | ".." => Some("key contains a '.' or '..' segment"),
            s if s.len() > MAX_SEGMENT_LEN => Some("key has a segment longer than 253 bytes"),
            _ => None,
        })
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidKey {
            store: store.to_owned(),
            key: key.to_owned(),
            reason,
        }),
    }
}

/// Checks a listing prefix: any string without control characters, at most 1024 bytes.
pub fn check_prefix(store: &str, prefix: &str) -> Result<(), StoreError> {
    if prefix.len() > MAX_OBJECT_KEY_LEN || prefix.chars().any(char::is_control) {
        return Err(StoreError::InvalidKey {
            store: store.to_owned(),
            key: prefix.to_owned(),
            reason: "prefix is too long or contains a control character",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_state_and_workspace_keys() {
        for ok in [
            "a",
            "a/b.tfstate",
            "env:/dev/app.tfstate.tflock",
            "x/.hidden",
            "a..b",
        ] {
            assert!(check_key("t", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_escaping_and_malformed_keys() {
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/.", "a\0b", "a\nb",
        ] {
            let err = check_key("t", bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidKey { .. }), "{bad:?}");
        }
        assert!(check_key("t", &"a".repeat(254)).is_err());
        assert!(check_key("t", &format!("{}/b", "a".repeat(253))).is_ok());
    }
}

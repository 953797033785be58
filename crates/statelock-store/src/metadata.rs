//! The user-metadata rules every adapter enforces on a put, so that what one store accepts
//! every store accepts: S3's `x-amz-meta-*` headers are the narrowest carrier (header-safe
//! ASCII, 2 KB in all), so those are the rules.

use crate::error::StoreError;
use crate::port::Metadata;

/// Most bytes of metadata (names plus values) one object may carry: S3's limit for
/// user-defined metadata.
pub const MAX_METADATA_LEN: usize = 2048;

/// Checks `metadata` for a put of `key`, naming `store` in the error: names are non-empty,
/// of `a`-`z`, `0`-`9` and `-`; values are printable ASCII (space to `~`) without leading or
/// trailing spaces (S3 trims them); names and values together are at most
/// [`MAX_METADATA_LEN`] bytes.
pub fn check_metadata(store: &str, key: &str, metadata: &Metadata) -> Result<(), StoreError> {
    let total: usize = metadata.iter().map(|(n, v)| n.len() + v.len()).sum();
    let bad_name = metadata.keys().find(|n| {
        n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let bad_value = metadata.iter().find(|(_, v)| {
        !v.bytes().all(|b| (b' '..=b'~').contains(&b)) || v.starts_with(' ') || v.ends_with(' ')
    });
    let reason = if let Some(name) = bad_name {
        format!("metadata name {name:?} is not of lower-case letters, digits and '-'")
    } else if let Some((name, _)) = bad_value {
        format!("metadata {name:?} has a value that is not printable ASCII without outer spaces")
    } else if total > MAX_METADATA_LEN {
        format!("metadata takes {total} bytes; at most {MAX_METADATA_LEN} are accepted")
    } else {
        return Ok(());
    };
    Err(StoreError::other(store.to_owned(), "put", key, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn accepts_header_safe_pairs_and_refuses_the_rest() {
        assert!(
            check_metadata(
                "t",
                "k",
                &meta(&[("statelock-serial", "7"), ("a1", "x=y%20z")])
            )
            .is_ok()
        );
        for bad in [
            meta(&[("Upper", "v")]),
            meta(&[("", "v")]),
            meta(&[("a_b", "v")]),
            meta(&[("n", "tab\there")]),
            meta(&[("n", "é")]),
            meta(&[("n", " padded")]),
        ] {
            assert!(check_metadata("t", "k", &bad).is_err(), "{bad:?}");
        }
        let big = "v".repeat(MAX_METADATA_LEN);
        assert!(check_metadata("t", "k", &meta(&[("n", &big)])).is_err());
        assert!(check_metadata("t", "k", &meta(&[("n", &big[1..])])).is_ok());
    }
}

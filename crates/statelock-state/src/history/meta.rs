//! The metadata kept next to each version: what was written, when, by whom and why.

use serde::{Deserialize, Serialize};

/// Why a version was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A client wrote the state (POST/PUT).
    Write,
    /// `POST /v1/api/.../rollback` copied an old version forward.
    Rollback,
    /// The state was deleted; the version is the content it had.
    Delete,
    /// A stuck lock was taken over; the version is the content at that moment.
    LockTakeover,
    /// The metadata object is missing (a crash between the two puts, or pruned halfway).
    Unknown,
}

/// One version's metadata, stored as `<id>.meta.json` and returned by the versions API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// The version ID (also in the key; repeated so the object stands alone).
    pub id: String,
    pub kind: Kind,
    /// When the version was recorded, RFC 3339 UTC.
    pub time: String,
    /// The lock holder's `Who` when the state was locked, else the client's address, else
    /// `unknown`.
    pub who: String,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    /// Size of the body in bytes.
    pub size: u64,
    /// MD5 of the body, lower-case hex (what Terraform sends as `Content-MD5`, decoded);
    /// `None` only when the metadata object is missing.
    pub md5: Option<String>,
    /// The lock ID the write was made under, if any.
    pub lock_id: Option<String>,
}

/// Lower-case hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_a_known_digest() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn kinds_are_kebab_case() {
        assert_eq!(
            serde_json::to_string(&Kind::LockTakeover).unwrap(),
            r#""lock-takeover""#
        );
    }
}

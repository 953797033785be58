//! Where history lives in the store: the reserved prefix, each state's folder, and version IDs.
//!
//! A version ID is `<UTC time YYYYMMDDTHHMMSS.nnnnnnnnnZ>-<serial, 20 digits>-<8 hex>`: fixed
//! width, so the store's ascending key order is the order in which versions were recorded, and
//! one prefix listing gives the whole history in order. Time comes first rather than serial
//! because serials restart (a deleted and re-created state, a new lineage written over an empty
//! one) while time does not; see `record` for how clock skew between replicas is absorbed.

use statelock_core::{StateKey, Timestamp};

/// Why the server cannot keep a state at a key; the message is worded for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid state key: {0}")]
pub struct ServerKeyError(String);

/// Every key under this prefix belongs to statelock; none of them may be a state.
pub const RESERVED_PREFIX: &str = ".statelock/";

/// Versions of `<key>` live under `<HISTORY_PREFIX><key>/`.
pub const HISTORY_PREFIX: &str = ".statelock/history/";

/// Suffix of a version's body object.
pub const BODY_SUFFIX: &str = ".tfstate";

/// Suffix of a version's metadata object.
pub const META_SUFFIX: &str = ".meta.json";

/// Longest state key the server accepts: its history objects
/// (`.statelock/history/<key>/<version id>.meta.json`) must still fit S3's 1024-byte limit.
pub const MAX_SERVER_KEY_LEN: usize = 1024 - HISTORY_OVERHEAD;

/// Bytes a history object key adds to the state key: the prefix, a `/`, the version ID
/// (`YYYYMMDDTHHMMSS.nnnnnnnnnZ-<20-digit serial>-<8 hex>`) and the longer suffix.
const HISTORY_OVERHEAD: usize = HISTORY_PREFIX.len() + 1 + 56 + META_SUFFIX.len();

/// Longest last segment the server accepts: the lock key adds `.tflock` to it, and every
/// store refuses segments over 253 bytes.
pub const MAX_SERVER_KEY_SEGMENT_LEN: usize = 253 - statelock_core::LOCK_SUFFIX.len();

/// Refuses state keys the server could not keep: keys under the reserved prefix (so no client
/// can overwrite history through the Terraform endpoint, and no history object can ever be
/// mistaken for a state), and keys too long for their lock or history objects, which would
/// otherwise be accepted by one request and refused by the next.
pub fn check_server_key(key: &StateKey) -> Result<(), ServerKeyError> {
    let key = key.as_str();
    if key.starts_with(RESERVED_PREFIX) || key == ".statelock" {
        return Err(ServerKeyError(format!(
            "keys under {RESERVED_PREFIX} are reserved for statelock's state history"
        )));
    }
    if key.len() > MAX_SERVER_KEY_LEN {
        return Err(ServerKeyError(format!(
            "it is {} bytes; at most {MAX_SERVER_KEY_LEN} are accepted, so that \
             its history objects stay within S3's 1024-byte key limit",
            key.len()
        )));
    }
    if key
        .split('/')
        .any(|segment| segment.len() > MAX_SERVER_KEY_SEGMENT_LEN)
    {
        return Err(ServerKeyError(format!(
            "a path segment is longer than {MAX_SERVER_KEY_SEGMENT_LEN} bytes, \
             which leaves no room for the lock object's .tflock suffix"
        )));
    }
    Ok(())
}

/// The folder holding `key`'s versions, with its trailing `/`.
pub fn state_prefix(key: &StateKey) -> String {
    format!("{HISTORY_PREFIX}{key}/")
}

/// One version's identity, as it appears in object keys and API paths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionId {
    pub unix_secs: i64,
    pub nanos: u32,
    pub serial: u64,
    pub short: String,
}

impl VersionId {
    /// A fresh ID at `time` for a state of `serial`.
    pub fn new(time: Timestamp, serial: u64) -> VersionId {
        let lock_id = statelock_core::LockId::generate();
        VersionId {
            unix_secs: time.unix_secs(),
            nanos: time.subsec_nanos(),
            serial,
            short: lock_id[..8].to_owned(),
        }
    }

    /// The instant recorded in the ID.
    pub fn time(&self) -> Timestamp {
        Timestamp::from_unix(self.unix_secs, self.nanos)
    }

    /// Parses an ID as [`VersionId::to_string`] writes it; `None` for anything else.
    pub fn parse(id: &str) -> Option<VersionId> {
        let mut parts = id.split('-');
        let (stamp, serial, short) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || stamp.len() != 26
            || serial.len() != 20
            || short.len() != 8
            || !serial.bytes().all(|b| b.is_ascii_digit())
            || !short.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let b = stamp.as_bytes();
        if b[8] != b'T' || b[15] != b'.' || b[25] != b'Z' {
            return None;
        }
        let rfc = format!(
            "{}-{}-{}T{}:{}:{}{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15],
            &stamp[15..]
        );
        let time = Timestamp::parse_rfc3339(&rfc).ok()?;
        Some(VersionId {
            unix_secs: time.unix_secs(),
            nanos: time.subsec_nanos(),
            serial: serial.parse().ok()?,
            short: short.to_owned(),
        })
    }

    /// The key of this version's body for `key`.
    pub fn body_key(&self, key: &StateKey) -> String {
        format!("{}{self}{BODY_SUFFIX}", state_prefix(key))
    }

    /// The key of this version's metadata for `key`.
    pub fn meta_key(&self, key: &StateKey) -> String {
        format!("{}{self}{META_SUFFIX}", state_prefix(key))
    }
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // RFC 3339 to the second is fixed width; strip its separators for a compact key.
        let rfc = Timestamp::from_unix(self.unix_secs, 0).to_rfc3339();
        let compact: String = rfc[..19]
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        write!(
            f,
            "{compact}.{:09}Z-{:020}-{}",
            self.nanos, self.serial, self.short
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time_then_serial() {
        let a = VersionId {
            unix_secs: 1_700_000_000,
            nanos: 5,
            serial: 12,
            short: "0a1b2c3d".to_owned(),
        };
        let text = a.to_string();
        assert_eq!(
            text,
            "20231114T221320.000000005Z-00000000000000000012-0a1b2c3d"
        );
        assert_eq!(VersionId::parse(&text), Some(a.clone()));
        let later = VersionId {
            nanos: 6,
            serial: 1,
            ..a.clone()
        };
        assert!(later.to_string() > text);
        for bad in ["", "diff", "x-y-z", &text[1..], &text.replace('Z', "z")] {
            assert_eq!(VersionId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reserved_prefix_is_refused_as_a_state_key() {
        for bad in [
            ".statelock/history/a/x.tfstate",
            ".statelock/anything",
            ".statelock",
        ] {
            assert!(
                check_server_key(&StateKey::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
        assert!(check_server_key(&StateKey::parse("statelock/a").unwrap()).is_ok());
        let key = |s: String| StateKey::parse(&s).unwrap();
        let longest = format!(
            "{}/{}",
            "a".repeat(200),
            "b".repeat(MAX_SERVER_KEY_LEN - 201)
        );
        assert!(
            check_server_key(&key(longest.clone())).is_err(),
            "segment too long"
        );
        let segments = |n: usize| vec!["s".repeat(99); n].join("/");
        assert!(check_server_key(&key(segments(9))).is_ok());
        let too_long = format!("{}/{}", segments(9), "x".repeat(MAX_SERVER_KEY_LEN - 899));
        assert_eq!(too_long.len(), MAX_SERVER_KEY_LEN + 1);
        let err = check_server_key(&key(too_long)).unwrap_err();
        assert!(format!("{err:?}").contains("1024-byte"), "{err:?}");
        assert!(check_server_key(&key("c".repeat(MAX_SERVER_KEY_SEGMENT_LEN))).is_ok());
        assert!(check_server_key(&key("c".repeat(MAX_SERVER_KEY_SEGMENT_LEN + 1))).is_err());
    }
}

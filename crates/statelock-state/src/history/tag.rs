//! What statelock keeps as object metadata (S3's `x-amz-meta-*`), written by the same put as
//! the body so that it can never describe other bytes:
//!
//! - on a state it writes, the **state tag**: the document's serial, lineage and whether it has
//!   content (all the stale-write guard reads), its size, MD5 and SHA-256 (the identical-bytes
//!   check and S3's `If-Match` on an MD5), the history version that recorded it, and how many
//!   versions were recorded since the history was last pruned. A write then only needs the
//!   state's metadata (a HEAD), not its body; a state without a tag (written by another tool,
//!   or by a release from before tags) is read in full, as before.
//! - on a history version, its [`VersionMeta`] (`statelock-version`), so that a version is one
//!   object. A version whose metadata does not fit (a very long `Who`) keeps it in the
//!   `<id>.meta.json` object beside the body, as every version did before.
//!
//! Values are percent-encoded, so any lineage or `Who` fits the port's printable-ASCII rule.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use statelock_core::state::StateHeader;
use statelock_store::{MAX_METADATA_LEN, Metadata};

use super::layout::VersionId;
use super::meta::{VersionMeta, md5_hex};

/// Marks a state tag, and its format.
const TAG: &str = "statelock-tag";
const TAG_FORMAT: &str = "1";
const SERIAL: &str = "statelock-serial";
const LINEAGE: &str = "statelock-lineage";
const CONTENT: &str = "statelock-content";
const SIZE: &str = "statelock-size";
const MD5: &str = "statelock-md5";
const SHA256: &str = "statelock-sha256";
const HISTORY: &str = "statelock-history";
const UNPRUNED: &str = "statelock-unpruned";

/// A history version's metadata, on its body object.
pub(super) const VERSION: &str = "statelock-version";

/// A state body about to be written, with what its tag and version need, computed once.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub bytes: Bytes,
    /// `None` when the bytes are not a state document (a rollback may copy anything).
    pub header: Option<StateHeader>,
    /// Lower-case hex.
    pub md5: String,
    /// Lower-case hex.
    pub sha256: String,
}

impl Incoming {
    pub fn new(bytes: Bytes) -> Incoming {
        Incoming {
            header: StateHeader::parse(&bytes).ok(),
            md5: md5_hex(&bytes),
            sha256: hex(&Sha256::digest(&bytes)),
            bytes,
        }
    }

    /// Whether `tag` describes exactly these bytes.
    pub fn is(&self, tag: &StateTag) -> bool {
        tag.size == self.bytes.len() as u64 && tag.sha256 == self.sha256
    }
}

/// The state tag (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTag {
    pub header: StateHeader,
    pub size: u64,
    pub md5: String,
    pub sha256: String,
    /// The version that recorded this state; `None` when it was written outside the history.
    pub history: Option<VersionId>,
    /// Versions recorded since the state's history was last pruned.
    pub unpruned: u32,
}

impl StateTag {
    /// The tag of `incoming`, or `None` when it is not a state document (then the next write
    /// reads it, and the guard says what is wrong with it).
    pub fn of(incoming: &Incoming, history: Option<VersionId>, unpruned: u32) -> Option<StateTag> {
        Some(StateTag {
            header: incoming.header.clone()?,
            size: incoming.bytes.len() as u64,
            md5: incoming.md5.clone(),
            sha256: incoming.sha256.clone(),
            history,
            unpruned,
        })
    }

    /// The metadata to write, or `None` when it would not fit (a lineage of kilobytes): such a
    /// state is simply untagged, and read in full by the next write.
    pub fn to_metadata(&self) -> Option<Metadata> {
        let mut m = Metadata::new();
        let mut set = |name: &str, value: String| m.insert(name.to_owned(), value);
        set(TAG, TAG_FORMAT.to_owned());
        if let Some(serial) = self.header.serial {
            set(SERIAL, serial.to_string());
        }
        if let Some(lineage) = &self.header.lineage {
            set(LINEAGE, encode(lineage));
        }
        set(CONTENT, u8::from(self.header.has_content).to_string());
        set(SIZE, self.size.to_string());
        set(MD5, self.md5.clone());
        set(SHA256, self.sha256.clone());
        if let Some(id) = &self.history {
            set(HISTORY, id.to_string());
        }
        set(UNPRUNED, self.unpruned.to_string());
        fits(&m).then_some(m)
    }

    /// The tag in an object's metadata, if it has a whole one for `size` bytes; anything less
    /// is no tag, so the caller reads the body.
    pub fn from_metadata(m: &Metadata, size: u64) -> Option<StateTag> {
        if m.get(TAG).map(String::as_str) != Some(TAG_FORMAT) {
            return None;
        }
        // Absent is `Some(None)`; present but unreadable is `None`, no tag.
        let number = |name: &str| match m.get(name) {
            Some(v) => v.parse::<u64>().ok().map(Some),
            None => Some(None),
        };
        let tag = StateTag {
            header: StateHeader {
                serial: number(SERIAL)?,
                lineage: match m.get(LINEAGE) {
                    Some(v) => Some(decode(v)?),
                    None => None,
                },
                has_content: match m.get(CONTENT)?.as_str() {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                },
            },
            size: number(SIZE)??,
            md5: hex_field(m.get(MD5)?, 32)?,
            sha256: hex_field(m.get(SHA256)?, 64)?,
            history: match m.get(HISTORY) {
                Some(id) => Some(VersionId::parse(id)?),
                None => None,
            },
            unpruned: u32::try_from(number(UNPRUNED)??).ok()?,
        };
        (tag.size == size).then_some(tag)
    }
}

/// A version's metadata as object metadata, or `None` when it does not fit.
pub(super) fn version_metadata(meta: &VersionMeta) -> Option<Metadata> {
    let json = serde_json::to_string(meta).expect("version metadata always serialises");
    let m = Metadata::from([(VERSION.to_owned(), encode(&json))]);
    fits(&m).then_some(m)
}

/// The version metadata on a body object, if it carries any.
pub(super) fn version_from_metadata(m: &Metadata) -> Option<VersionMeta> {
    serde_json::from_str(&decode(m.get(VERSION)?)?).ok()
}

/// Leaves room under S3's limit for anything an operator's tooling adds.
fn fits(m: &Metadata) -> bool {
    m.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() <= MAX_METADATA_LEN - 256
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_field(value: &str, len: usize) -> Option<String> {
    (value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

/// Percent-encodes every byte outside `!`..`~` and `%` itself.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(pair, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Kind;

    fn incoming(lineage: &str) -> Incoming {
        Incoming::new(Bytes::from(format!(
            r#"{{"version":4,"serial":7,"lineage":"{lineage}","outputs":{{}},"resources":[]}}"#
        )))
    }

    #[test]
    fn a_tag_round_trips_through_metadata_the_port_accepts() {
        let body = incoming("réseau 1%");
        let id = VersionId::parse("20231114T221320.000000005Z-00000000000000000007-0a1b2c3d");
        let tag = StateTag::of(&body, id, 3).unwrap();
        let m = tag.to_metadata().unwrap();
        statelock_store::check_metadata("t", "k", &m).unwrap();
        assert_eq!(StateTag::from_metadata(&m, tag.size), Some(tag.clone()));
        assert!(body.is(&tag));
        assert_eq!(
            StateTag::from_metadata(&m, tag.size + 1),
            None,
            "a tag for other bytes is no tag"
        );
        let mut foreign = m.clone();
        foreign.remove(TAG);
        assert_eq!(StateTag::from_metadata(&foreign, tag.size), None);
        let mut damaged = m;
        damaged.insert(SHA256.to_owned(), "zz".to_owned());
        assert_eq!(StateTag::from_metadata(&damaged, tag.size), None);
    }

    #[test]
    fn metadata_that_does_not_fit_is_left_off() {
        let body = incoming(&"L".repeat(3000));
        assert_eq!(StateTag::of(&body, None, 0).unwrap().to_metadata(), None);
        let meta = VersionMeta {
            id: "x".into(),
            kind: Kind::Write,
            time: "t".into(),
            who: "w".repeat(3000),
            serial: None,
            lineage: None,
            size: 0,
            md5: None,
            lock_id: None,
        };
        assert_eq!(version_metadata(&meta), None);
        let short = VersionMeta {
            who: "ü@host".into(),
            ..meta
        };
        let m = version_metadata(&short).unwrap();
        statelock_store::check_metadata("t", "k", &m).unwrap();
        assert_eq!(version_from_metadata(&m), Some(short));
    }
}

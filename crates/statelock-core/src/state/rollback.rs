//! Rolling a state back: an old version's content, written as the next serial on the current
//! lineage, so Terraform and OpenTofu accept it as an ordinary newer state.
//!
//! Encrypted states are refused: OpenTofu checks their plaintext serial against the encrypted
//! one, so a copy with a new serial could never be read back.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::StateHeader;
use super::raw::is_encrypted;

/// The document a rollback writes, and the numbers it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPlan {
    /// The new state document, indented as Terraform writes states.
    pub body: Vec<u8>,
    /// The new serial: the current serial + 1 (or the version's + 1 when there is no state).
    pub serial: u64,
    /// The lineage written: the current one (or the version's when there is no state).
    pub lineage: Option<String>,
    /// Serial of the state being replaced; `None` when there is none.
    pub current_serial: Option<u64>,
    /// Serial recorded in the chosen version.
    pub version_serial: Option<u64>,
    /// The version had another lineage and `force` carried it over to the current one.
    pub lineage_forced: bool,
    /// The version holds what the current state holds (serial and lineage aside): the copy
    /// would change nothing but the serial.
    pub same_as_current: bool,
}

/// Why a version cannot be rolled back to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "the state is OpenTofu-encrypted; a copy with a new serial would fail OpenTofu's serial check on decrypt"
    )]
    Encrypted,
    /// `what` is "the version" or "the current state".
    #[error("{what} is not a state document: {reason}")]
    NotAState { what: &'static str, reason: String },
    #[error(
        "the version has lineage {} but the current state has lineage {}",
        lineage_text(version.as_deref()),
        lineage_text(current.as_deref())
    )]
    LineageMismatch {
        version: Option<String>,
        current: Option<String>,
    },
}

/// A lineage for messages: `"L1"` (quoted, as it may be any string), or `(none)`.
pub fn lineage_text(lineage: Option<&str>) -> String {
    lineage.map_or_else(|| "(none)".to_owned(), |l| format!("{l:?}"))
}

/// Plans copying `version` forward over `current` (`None`, or an empty body, which spec §5.1
/// reads as "no state": no state stored). A version of another lineage is refused unless
/// `force`, and then gets the current lineage.
pub fn plan_rollback(
    version: &[u8],
    current: Option<&[u8]>,
    force: bool,
) -> Result<RollbackPlan, RollbackError> {
    let current = current.filter(|c| !c.is_empty());
    if is_encrypted(version) || current.is_some_and(is_encrypted) {
        return Err(RollbackError::Encrypted);
    }
    let old = header(version, "the version")?;
    let cur = current
        .map(|c| header(c, "the current state"))
        .transpose()?;
    if cur.as_ref().is_some_and(|c| c.lineage != old.lineage) && !force {
        return Err(RollbackError::LineageMismatch {
            version: old.lineage,
            current: cur.and_then(|c| c.lineage),
        });
    }
    let base = cur.as_ref().unwrap_or(&old);
    let serial = base.serial.unwrap_or(0) + 1;
    // A current state without a lineage has none to give: the version keeps its own.
    let lineage = base.lineage.clone().or_else(|| old.lineage.clone());
    let not_a_state = |reason| RollbackError::NotAState {
        what: "the version",
        reason,
    };
    let body = rewrite_serial_lineage(version, serial, lineage.as_deref()).map_err(not_a_state)?;
    let same_as_current = match current {
        Some(current) => same_content(version, current).map_err(not_a_state)?,
        None => false,
    };
    Ok(RollbackPlan {
        body,
        serial,
        lineage_forced: lineage != old.lineage,
        lineage,
        current_serial: cur.and_then(|c| c.serial),
        version_serial: old.serial,
        same_as_current,
    })
}

/// Whether two state documents hold the same members, in the same order and with the same
/// JSON text, apart from serial and lineage: copying one over the other would only bump the
/// serial. Compared as text, so numbers are never rounded; a difference in layout alone counts
/// as a change, which errs on the side of writing.
fn same_content(version: &[u8], current: &[u8]) -> Result<bool, String> {
    let current = Members::parse(current)?;
    let members = |m: &Members| -> Vec<(String, String)> {
        m.0.iter()
            .filter(|(k, _)| k != "serial" && k != "lineage")
            .map(|(k, v)| (k.clone(), v.get().to_owned()))
            .collect()
    };
    Ok(members(&Members::parse(version)?) == members(&current))
}

fn header(bytes: &[u8], what: &'static str) -> Result<StateHeader, RollbackError> {
    StateHeader::parse(bytes).map_err(|reason| RollbackError::NotAState { what, reason })
}

/// `old` with its serial and lineage replaced, indented as Terraform writes states, with a
/// trailing newline.
///
/// Every other top-level value is copied as raw JSON text, never through numbers: a state's
/// numbers are arbitrary-precision (cty) and would be rounded by an `f64` round trip.
pub fn rewrite_serial_lineage(
    old: &[u8],
    serial: u64,
    lineage: Option<&str>,
) -> Result<Vec<u8>, String> {
    let mut doc = Members::parse(old)?;
    let raw = |json: String| RawValue::from_string(json).expect("serde_json wrote valid JSON");
    doc.set("serial", raw(serial.to_string()));
    if let Some(lineage) = lineage {
        let quoted = serde_json::to_string(lineage).expect("a string serialises");
        doc.set("lineage", raw(quoted));
    }
    let mut out = serde_json::to_vec_pretty(&doc).expect("raw values serialise");
    out.push(b'\n');
    Ok(out)
}

/// A JSON object's members in document order, each value kept as its raw text, so a rewrite
/// keeps Terraform's key order (version, terraform_version, serial, lineage, outputs, ...).
struct Members(Vec<(String, Box<RawValue>)>);

impl Members {
    fn parse(bytes: &[u8]) -> Result<Members, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON object: {e}"))
    }

    /// Replaces `key`'s value where it stands, or appends it.
    fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl Serialize for Members {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lineage: &str, serial: u64, n: &str) -> String {
        format!(
            r#"{{"version":4,"serial":{serial},"lineage":"{lineage}","outputs":{{"n":{{"value":"{n}","type":"string"}}}},"resources":[]}}"#
        )
    }

    #[test]
    fn rewrite_changes_serial_and_lineage_and_keeps_numbers_exact() {
        let old = br#"{"version":4,"serial":3,"lineage":"old","outputs":{"big":{"value":123456789012345678901234567890.000000000000000000001,"type":"number"}},"resources":[]}"#;
        let new = rewrite_serial_lineage(old, 9, Some("cur")).unwrap();
        let text = std::str::from_utf8(&new).unwrap();
        assert!(
            text.contains("123456789012345678901234567890.000000000000000000001"),
            "{text}"
        );
        let doc: serde_json::Value = serde_json::from_slice(&new).unwrap();
        assert_eq!(doc["serial"], 9);
        assert_eq!(doc["lineage"], "cur");
        assert_eq!(doc["version"], 4);
        assert!(rewrite_serial_lineage(b"[1]", 1, None).is_err());
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  \"")?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            ["version", "serial", "lineage", "outputs", "resources"]
        );
    }

    #[test]
    fn next_serial_on_the_current_lineage() {
        let plan = plan_rollback(
            state("L", 2, "old").as_bytes(),
            Some(state("L", 7, "new").as_bytes()),
            false,
        )
        .unwrap();
        assert_eq!(
            (plan.serial, plan.current_serial, plan.version_serial),
            (8, Some(7), Some(2))
        );
        let doc: serde_json::Value = serde_json::from_slice(&plan.body).unwrap();
        assert_eq!(
            (
                doc["serial"].as_u64(),
                doc["outputs"]["n"]["value"].as_str()
            ),
            (Some(8), Some("old"))
        );
        let fresh = plan_rollback(state("L", 2, "old").as_bytes(), None, false).unwrap();
        assert_eq!((fresh.serial, fresh.lineage.as_deref()), (3, Some("L")));
        let over_empty = plan_rollback(state("L", 2, "old").as_bytes(), Some(b""), false);
        assert_eq!(over_empty, Ok(fresh));
    }

    #[test]
    fn another_lineage_needs_force_and_gets_the_current_one() {
        let version = state("OTHER", 2, "old");
        let current = state("L", 7, "new");
        let refused = plan_rollback(version.as_bytes(), Some(current.as_bytes()), false);
        assert_eq!(
            refused,
            Err(RollbackError::LineageMismatch {
                version: Some("OTHER".into()),
                current: Some("L".into())
            })
        );
        let forced = plan_rollback(version.as_bytes(), Some(current.as_bytes()), true).unwrap();
        assert!(forced.lineage_forced);
        assert_eq!((forced.serial, forced.lineage.as_deref()), (8, Some("L")));
    }

    #[test]
    fn forced_onto_a_state_without_lineage_reports_the_lineage_written() {
        let current = br#"{"version":4,"serial":5,"outputs":{},"resources":[]}"#;
        let plan = plan_rollback(state("L1", 2, "old").as_bytes(), Some(current), true).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&plan.body).unwrap();
        assert_eq!(doc["lineage"], "L1");
        assert_eq!(
            (plan.lineage.as_deref(), plan.lineage_forced, plan.serial),
            (Some("L1"), false, 6)
        );
    }

    #[test]
    fn the_same_content_is_recognised_whatever_serial_and_lineage() {
        let plan = |version: &str, current: &str| {
            plan_rollback(version.as_bytes(), Some(current.as_bytes()), true).unwrap()
        };
        assert!(plan(&state("L", 2, "a"), &state("L", 7, "a")).same_as_current);
        assert!(plan(&state("X", 2, "a"), &state("L", 7, "a")).same_as_current);
        assert!(!plan(&state("L", 2, "a"), &state("L", 7, "b")).same_as_current);
        let fresh = plan_rollback(state("L", 2, "a").as_bytes(), None, false).unwrap();
        assert!(!fresh.same_as_current);
    }

    #[test]
    fn lineage_mismatches_read_as_text() {
        let err = RollbackError::LineageMismatch {
            version: Some("L1".into()),
            current: None,
        };
        assert_eq!(
            err.to_string(),
            r#"the version has lineage "L1" but the current state has lineage (none)"#
        );
    }

    #[test]
    fn encrypted_or_broken_documents_are_refused() {
        let enc = r#"{"serial":1,"lineage":"L","encrypted_data":"AA==","encryption_version":"v0"}"#;
        assert_eq!(
            plan_rollback(enc.as_bytes(), None, true),
            Err(RollbackError::Encrypted)
        );
        let err = plan_rollback(state("L", 1, "a").as_bytes(), Some(b"{oops"), true).unwrap_err();
        assert!(matches!(
            err,
            RollbackError::NotAState {
                what: "the current state",
                ..
            }
        ));
    }
}

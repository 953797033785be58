//! The header of a state document: serial, lineage and whether it has content, all the
//! stale-write guard (spec §5.2) and history metadata need.
//!
//! Everything else is skipped without being kept in memory, and OpenTofu's encrypted states
//! (whose `serial` and `lineage` stay plain) read the same way.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The parts of a state document the guard looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateHeader {
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    /// Whether the state has any resources or outputs, or is encrypted (and so unknown).
    pub has_content: bool,
}

#[derive(Deserialize)]
struct Raw {
    serial: Option<u64>,
    lineage: Option<String>,
    resources: Option<Vec<IgnoredAny>>,
    outputs: Option<HashMap<String, IgnoredAny>>,
    encrypted_data: Option<IgnoredAny>,
}

impl StateHeader {
    /// Reads the header of a state document; an error says why it is not a state.
    pub fn parse(bytes: &[u8]) -> Result<StateHeader, String> {
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let has_content = raw.encrypted_data.is_some()
            || raw.resources.is_some_and(|r| !r.is_empty())
            || raw.outputs.is_some_and(|o| !o.is_empty());
        Ok(StateHeader {
            serial: raw.serial,
            lineage: raw.lineage,
            has_content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parse_rejects_non_states() {
        for bad in ["", "[]", "{", r#"{"serial":-1}"#, r#"{"lineage":7}"#] {
            assert!(StateHeader::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_is_resources_outputs_or_encryption() {
        let parse = |s: &str| StateHeader::parse(s.as_bytes()).unwrap();
        assert!(!parse(r#"{"serial":1,"lineage":"L","outputs":{},"resources":[]}"#).has_content);
        assert!(parse(r#"{"outputs":{"a":{"value":1}}}"#).has_content);
        assert!(parse(r#"{"encrypted_data":"AA=="}"#).has_content);
        assert_eq!(parse(r#"{"serial":7,"lineage":"L"}"#).serial, Some(7));
    }
}

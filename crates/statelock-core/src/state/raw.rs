//! The parts of a state document that summaries and diffs read, deserialised leniently.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(super) struct RawState {
    pub version: Option<u64>,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub terraform_version: Option<String>,
    #[serde(default)]
    pub resources: Vec<RawResource>,
    #[serde(default)]
    pub outputs: BTreeMap<String, RawOutput>,
    pub encrypted_data: Option<Value>,
    pub encryption_version: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawResource {
    pub module: Option<String>,
    pub mode: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// e.g. `provider["registry.terraform.io/hashicorp/null"]`.
    pub provider: Option<String>,
    #[serde(default)]
    pub instances: Vec<Value>,
}

#[derive(Deserialize, PartialEq)]
pub(super) struct RawOutput {
    #[serde(default)]
    pub value: Value,
    #[serde(rename = "type")]
    pub kind: Option<Value>,
    #[serde(default)]
    pub sensitive: bool,
}

impl RawState {
    pub fn parse(bytes: &[u8]) -> Result<RawState, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// OpenTofu-encrypted: `encrypted_data` with a non-empty `encryption_version` (an empty one
    /// means unencrypted, spec §5.3).
    pub fn encrypted(&self) -> bool {
        self.encrypted_data.is_some()
            && self
                .encryption_version
                .as_deref()
                .is_some_and(|v| !v.is_empty())
    }
}

/// Whether `bytes` is an OpenTofu-encrypted state.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    RawState::parse(bytes).is_ok_and(|s| s.encrypted())
}

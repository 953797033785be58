//! A state document in brief: what `statelock state show` prints about a version.

use serde::Serialize;
use serde_json::Value;

use super::raw::RawState;

/// Serial, lineage, Terraform version, resources and outputs of one state document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateSummary {
    /// The state format version (4 for Terraform ≥ 0.12).
    pub format_version: Option<u64>,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub terraform_version: Option<String>,
    /// Whether the document is OpenTofu-encrypted; then only serial and lineage are known and
    /// the counts and outputs are `None`.
    pub encrypted: bool,
    /// Resource blocks (managed and data).
    pub resources: Option<usize>,
    /// Resource instances, i.e. the addresses `terraform state list` prints.
    pub instances: Option<usize>,
    pub outputs: Option<Vec<OutputSummary>>,
}

/// One output. The value is withheld when the output is sensitive, as Terraform does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputSummary {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl StateSummary {
    /// Summarises a state document; an error says why it is not one.
    pub fn parse(bytes: &[u8]) -> Result<StateSummary, String> {
        let raw = RawState::parse(bytes)?;
        let encrypted = raw.encrypted();
        let outputs = raw
            .outputs
            .into_iter()
            .map(|(name, o)| OutputSummary {
                name,
                sensitive: o.sensitive,
                kind: o.kind,
                value: (!o.sensitive).then_some(o.value),
            })
            .collect();
        Ok(StateSummary {
            format_version: raw.version,
            serial: raw.serial,
            lineage: raw.lineage,
            terraform_version: raw.terraform_version,
            encrypted,
            resources: (!encrypted).then_some(raw.resources.len()),
            instances: (!encrypted).then(|| raw.resources.iter().map(|r| r.instances.len()).sum()),
            outputs: (!encrypted).then_some(outputs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_and_withholds_sensitive_values() {
        let state = br#"{"version":4,"terraform_version":"1.0.3","serial":3,"lineage":"L",
          "outputs":{"pw":{"value":"hunter2","type":"string","sensitive":true},"n":{"value":"1","type":"string"}},
          "resources":[{"mode":"managed","type":"null_resource","name":"a","instances":[{},{}]},
                       {"mode":"data","type":"x","name":"b","instances":[{}]}]}"#;
        let s = StateSummary::parse(state).unwrap();
        assert_eq!(
            (
                s.serial,
                s.lineage.as_deref(),
                s.terraform_version.as_deref()
            ),
            (Some(3), Some("L"), Some("1.0.3"))
        );
        assert_eq!((s.resources, s.instances), (Some(2), Some(3)));
        let outputs = s.outputs.unwrap();
        assert_eq!(outputs[0].name, "n");
        assert_eq!(outputs[0].value, Some(Value::from("1")));
        assert_eq!(
            (outputs[1].name.as_str(), outputs[1].sensitive),
            ("pw", true)
        );
        assert_eq!(outputs[1].value, None);
        let json = serde_json::to_string(&outputs[1]).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
    }

    #[test]
    fn encrypted_states_show_only_their_plain_header() {
        let s = StateSummary::parse(
            br#"{"serial":4,"lineage":"L","encrypted_data":"AA==","encryption_version":"v0"}"#,
        )
        .unwrap();
        assert!(s.encrypted);
        assert_eq!((s.serial, s.outputs, s.resources), (Some(4), None, None));
        assert!(StateSummary::parse(b"[]").is_err());
    }
}

//! The difference between two state documents (format v4, spec §5.1): resources by address,
//! outputs by name. Pure; the API decides which versions to compare.
//!
//! Only the fields needed are parsed, and unknown fields are ignored, so states from newer
//! Terraform or OpenTofu releases diff the same way. Instance objects are compared as whole JSON
//! values. OpenTofu-encrypted states (spec §5.3) cannot be diffed and say so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why two documents cannot be diffed.
#[derive(Debug, PartialEq, Eq)]
pub enum DiffError {
    /// One side is OpenTofu-encrypted; names which (`from` or `to`).
    Encrypted(&'static str),
    /// One side is not a state document.
    NotAState(&'static str, String),
}

/// The answer of the diff API.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct StateDiff {
    pub resources: ResourceDiff,
    pub outputs: OutputDiff,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ResourceDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct OutputDiff {
    pub added: Vec<OutputChange>,
    pub removed: Vec<OutputChange>,
    pub changed: Vec<OutputChange>,
}

/// One output's change. Values are left out (and `sensitive` set) when either side is
/// sensitive, so the API never reveals what Terraform hides.
#[derive(Debug, Serialize, PartialEq)]
pub struct OutputChange {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    resources: Vec<RawResource>,
    #[serde(default)]
    outputs: BTreeMap<String, RawOutput>,
    encrypted_data: Option<Value>,
    encryption_version: Option<String>,
}

#[derive(Deserialize)]
struct RawResource {
    module: Option<String>,
    mode: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    instances: Vec<Value>,
}

#[derive(Deserialize, PartialEq)]
struct RawOutput {
    #[serde(default)]
    value: Value,
    #[serde(default)]
    sensitive: bool,
}

/// Whether `bytes` is an OpenTofu-encrypted state: `encrypted_data` with a non-empty
/// `encryption_version` (an empty one means unencrypted, spec §5.3).
pub fn is_encrypted(bytes: &[u8]) -> bool {
    serde_json::from_slice::<RawState>(bytes).is_ok_and(|s| encrypted(&s))
}

fn encrypted(s: &RawState) -> bool {
    s.encrypted_data.is_some()
        && s.encryption_version
            .as_deref()
            .is_some_and(|v| !v.is_empty())
}

/// The changes from `from` to `to`.
pub fn diff(from: &[u8], to: &[u8]) -> Result<StateDiff, DiffError> {
    let old = parse(from, "from")?;
    let new = parse(to, "to")?;
    let old_res = instances(&old);
    let new_res = instances(&new);
    let mut out = StateDiff::default();
    for (address, value) in &new_res {
        match old_res.get(address) {
            None => out.resources.added.push(address.clone()),
            Some(before) if before != value => out.resources.changed.push(address.clone()),
            Some(_) => {}
        }
    }
    out.resources.removed = old_res
        .keys()
        .filter(|a| !new_res.contains_key(*a))
        .cloned()
        .collect();
    for (name, after) in &new.outputs {
        match old.outputs.get(name) {
            None => out.outputs.added.push(change(name, None, Some(after))),
            Some(before) if before != after => {
                out.outputs
                    .changed
                    .push(change(name, Some(before), Some(after)))
            }
            Some(_) => {}
        }
    }
    for (name, before) in &old.outputs {
        if !new.outputs.contains_key(name) {
            out.outputs.removed.push(change(name, Some(before), None));
        }
    }
    Ok(out)
}

fn parse(bytes: &[u8], side: &'static str) -> Result<RawState, DiffError> {
    let state: RawState =
        serde_json::from_slice(bytes).map_err(|e| DiffError::NotAState(side, e.to_string()))?;
    if encrypted(&state) {
        return Err(DiffError::Encrypted(side));
    }
    Ok(state)
}

fn change(name: &str, from: Option<&RawOutput>, to: Option<&RawOutput>) -> OutputChange {
    let sensitive = from.is_some_and(|o| o.sensitive) || to.is_some_and(|o| o.sensitive);
    let shown = |o: Option<&RawOutput>| o.filter(|_| !sensitive).map(|o| o.value.clone());
    OutputChange {
        name: name.to_owned(),
        sensitive,
        from: shown(from),
        to: shown(to),
    }
}

/// Every instance by its address, e.g. `module.net.data.aws_ami.x["a"]`.
fn instances(state: &RawState) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for r in &state.resources {
        let mut base = String::new();
        if let Some(module) = r.module.as_deref().filter(|m| !m.is_empty()) {
            base.push_str(module);
            base.push('.');
        }
        if r.mode.as_deref() == Some("data") {
            base.push_str("data.");
        }
        base.push_str(&format!("{}.{}", r.kind, r.name));
        for instance in &r.instances {
            let mut address = base.clone();
            match instance.get("index_key") {
                Some(Value::Number(n)) => address.push_str(&format!("[{n}]")),
                Some(Value::String(s)) => {
                    address.push_str(&format!("[{}]", Value::from(s.as_str())))
                }
                _ => {}
            }
            if let Some(Value::String(deposed)) = instance.get("deposed") {
                address.push_str(&format!(" (deposed {deposed})"));
            }
            out.insert(address, instance);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_cover_modules_data_sources_and_keys() {
        let state = br#"{"resources":[
          {"module":"module.net","mode":"data","type":"aws_ami","name":"x","instances":[{"index_key":"a"}]},
          {"mode":"managed","type":"null_resource","name":"n","instances":[{"index_key":0},{"index_key":1,"deposed":"00aa"}]},
          {"mode":"managed","type":"random_id","name":"r","instances":[{}]}]}"#;
        let parsed: RawState = serde_json::from_slice(state).unwrap();
        let keys: Vec<_> = instances(&parsed).into_keys().collect();
        assert_eq!(
            keys,
            [
                r#"module.net.data.aws_ami.x["a"]"#,
                "null_resource.n[0]",
                "null_resource.n[1] (deposed 00aa)",
                "random_id.r",
            ]
        );
    }

    #[test]
    fn encrypted_needs_a_version() {
        assert!(is_encrypted(
            br#"{"serial":1,"encrypted_data":"AA==","encryption_version":"v0"}"#
        ));
        assert!(!is_encrypted(
            br#"{"serial":1,"encrypted_data":"AA==","encryption_version":""}"#
        ));
        assert_eq!(
            diff(
                b"{}",
                br#"{"encrypted_data":"AA==","encryption_version":"v0"}"#
            ),
            Err(DiffError::Encrypted("to"))
        );
    }
}

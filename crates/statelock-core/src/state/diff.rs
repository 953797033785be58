//! The difference between two state documents: resources by address, outputs by name.
//!
//! Instance objects are compared as whole JSON values. Output values are never revealed when
//! either side marks the output sensitive. Encrypted states cannot be diffed and say so.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::raw::{RawOutput, RawState};

/// Which of the two documents a [`DiffError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    From,
    To,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::From => "from",
            Side::To => "to",
        })
    }
}

/// Why two documents cannot be diffed.
#[derive(Debug, PartialEq, Eq)]
pub enum DiffError {
    /// One side is OpenTofu-encrypted.
    Encrypted(Side),
    /// One side is not a state document; the reason from the JSON parser.
    NotAState(Side, String),
}

/// Resources and outputs changed from one document to another.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct StateDiff {
    pub resources: ResourceDiff,
    pub outputs: OutputDiff,
}

impl StateDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        let r = &self.resources;
        let o = &self.outputs;
        r.added.is_empty()
            && r.removed.is_empty()
            && r.changed.is_empty()
            && o.added.is_empty()
            && o.removed.is_empty()
            && o.changed.is_empty()
    }
}

/// Resource instance addresses, e.g. `module.web.aws_instance.app[0]`.
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
/// sensitive, so a diff never reveals what Terraform hides.
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

/// The changes from `from` to `to`.
pub fn diff(from: &[u8], to: &[u8]) -> Result<StateDiff, DiffError> {
    let old = parse(from, Side::From)?;
    let new = parse(to, Side::To)?;
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

fn parse(bytes: &[u8], side: Side) -> Result<RawState, DiffError> {
    let state = RawState::parse(bytes).map_err(|e| DiffError::NotAState(side, e))?;
    if state.encrypted() {
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
    use crate::state::is_encrypted;

    #[test]
    fn addresses_cover_modules_data_sources_and_keys() {
        let state = br#"{"resources":[
          {"module":"module.net","mode":"data","type":"aws_ami","name":"x","instances":[{"index_key":"a"}]},
          {"mode":"managed","type":"null_resource","name":"n","instances":[{"index_key":0},{"index_key":1,"deposed":"00aa"}]},
          {"mode":"managed","type":"random_id","name":"r","instances":[{}]}]}"#;
        let parsed = RawState::parse(state).unwrap();
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
    fn resources_and_outputs_by_change_and_sensitive_values_hidden() {
        let from = br#"{"outputs":{"a":{"value":1},"gone":{"value":2},"pw":{"value":"x","sensitive":true}},
          "resources":[{"type":"t","name":"kept","instances":[{"attributes":{"v":1}}]},
                       {"type":"t","name":"old","instances":[{}]}]}"#;
        let to =
            br#"{"outputs":{"a":{"value":3},"new":{"value":4},"pw":{"value":"y","sensitive":true}},
          "resources":[{"type":"t","name":"kept","instances":[{"attributes":{"v":2}}]},
                       {"type":"t","name":"fresh","instances":[{}]}]}"#;
        let d = diff(from, to).unwrap();
        assert_eq!(d.resources.added, ["t.fresh"]);
        assert_eq!(d.resources.removed, ["t.old"]);
        assert_eq!(d.resources.changed, ["t.kept"]);
        let changed: Vec<_> = d.outputs.changed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(changed, ["a", "pw"]);
        assert_eq!(d.outputs.changed[0].to, Some(Value::from(3)));
        assert_eq!(
            (d.outputs.changed[1].sensitive, &d.outputs.changed[1].to),
            (true, &None)
        );
        assert_eq!(d.outputs.added[0].name, "new");
        assert_eq!(d.outputs.removed[0].name, "gone");
        assert!(!d.is_empty());
        assert!(diff(from, from).unwrap().is_empty());
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
            Err(DiffError::Encrypted(Side::To))
        );
        assert!(matches!(
            diff(b"nope", b"{}"),
            Err(DiffError::NotAState(Side::From, _))
        ));
    }
}

//! The lock record (`LockInfo`, spec §1): the body of every `.tflock` object, of every DynamoDB
//! lock item's `Info`, and of the HTTP backend's LOCK and UNLOCK requests.
//!
//! Encoding reproduces Go's `json.Marshal` byte for byte: keys `ID, Operation, Info, Who,
//! Version, Created, Path` in that order, compact, no trailing newline, HTML-safe escaping.
//! Decoding is as lenient as Go's: keys match case-insensitively, unknown keys and `null`
//! values are ignored, missing keys leave the zero value. Only an invalid `Created` or a value
//! of the wrong JSON type is an error.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, MapAccess, Visitor};

use crate::go_json::{key_matches_field, write_string};
use crate::lock_id::LockId;
use crate::timestamp::{Timestamp, TimestampError};

/// A lock record, with the same fields and meaning as Terraform's `statemgr.LockInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock ID, normally 8-4-4-4-12 hex; any string is accepted on input.
    pub id: String,
    /// Why the lock was taken, e.g. `OperationTypeApply` or `state-push`.
    pub operation: String,
    /// Free text; empty for the S3 and HTTP backends.
    pub info: String,
    /// `user@host` of the holder.
    pub who: String,
    /// Version of the client that took the lock, e.g. `1.10.0`.
    pub version: String,
    /// When the lock was taken.
    pub created: Timestamp,
    /// `<bucket>/<state key>` for S3 and DynamoDB locks; empty for the HTTP backend.
    pub path: String,
}

/// Why bytes are not a lock record.
#[derive(Debug, thiserror::Error)]
pub enum LockInfoError {
    /// Not JSON, not an object, or a field of the wrong JSON type.
    #[error("malformed lock record: {0}")]
    Malformed(String),
    /// `Created` is present but is not an RFC 3339 time.
    #[error("malformed lock record: field Created: {0}")]
    Created(#[from] TimestampError),
}

const FIELDS: [&str; 7] = [
    "ID",
    "Operation",
    "Info",
    "Who",
    "Version",
    "Created",
    "Path",
];

impl LockInfo {
    /// A new record with a fresh random ID, created now.
    pub fn new(operation: &str, who: &str, version: &str) -> LockInfo {
        LockInfo {
            id: LockId::generate(),
            operation: operation.to_owned(),
            info: String::new(),
            who: who.to_owned(),
            version: version.to_owned(),
            created: Timestamp::now(),
            path: String::new(),
        }
    }

    /// A record that carries only an ID: what OpenTofu ≥1.10 sends as a force-unlock body.
    pub fn id_only(id: &str) -> LockInfo {
        LockInfo {
            id: id.to_owned(),
            operation: String::new(),
            info: String::new(),
            who: String::new(),
            version: String::new(),
            created: Timestamp::ZERO,
            path: String::new(),
        }
    }

    /// Whether every field but `ID` is empty or zero, as in an ID-only unlock body.
    pub fn is_id_only(&self) -> bool {
        self.operation.is_empty()
            && self.info.is_empty()
            && self.who.is_empty()
            && self.version.is_empty()
            && self.created.is_zero()
            && self.path.is_empty()
    }

    /// The record as Go's `json.Marshal` writes it.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(160 + self.path.len() + self.who.len());
        let values: [&str; 7] = [
            &self.id,
            &self.operation,
            &self.info,
            &self.who,
            &self.version,
            &self.created.to_rfc3339(),
            &self.path,
        ];
        out.push('{');
        for (i, (name, value)) in FIELDS.iter().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            write_string(&mut out, value);
        }
        out.push('}');
        out
    }

    /// Reads a record as leniently as Go's `json.Unmarshal` into `LockInfo`.
    pub fn decode(bytes: &[u8]) -> Result<LockInfo, LockInfoError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let raw = de
            .deserialize_map(RawVisitor)
            .and_then(|raw| de.end().map(|()| raw))
            .map_err(|e| LockInfoError::Malformed(e.to_string()))?;
        let created = match raw.created {
            Some(s) => Timestamp::parse_rfc3339(&s)?,
            None => Timestamp::ZERO,
        };
        let [id, operation, info, who, version, _created, path] =
            raw.strings.map(Option::unwrap_or_default);
        Ok(LockInfo {
            id,
            operation,
            info,
            who,
            version,
            created,
            path,
        })
    }

    /// The "Lock Info:" block that Terraform prints under "Error acquiring the state lock",
    /// with labels padded so values start at column 13.
    pub fn render(&self) -> String {
        format!(
            "Lock Info:\n  ID:        {}\n  Path:      {}\n  Operation: {}\n  Who:       {}\n  Version:   {}\n  Created:   {}\n  Info:      {}\n",
            self.id,
            self.path,
            self.operation,
            self.who,
            self.version,
            self.created.to_go_display(),
            self.info
        )
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Field values as found, before `Created` is parsed; index = position in [`FIELDS`].
#[derive(Default)]
struct Raw {
    strings: [Option<String>; 7],
    created: Option<String>,
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with the lock record's fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut raw = Raw::default();
        while let Some(key) = map.next_key::<String>()? {
            let Some(index) = FIELDS.iter().position(|f| key_matches_field(&key, f)) else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            // Go leaves a field untouched for `null`; a later duplicate key overwrites.
            let value = match map.next_value::<serde_json::Value>()? {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                other => {
                    return Err(de::Error::custom(format!(
                        "field {} must be a string, found {}",
                        FIELDS[index],
                        json_kind(&other)
                    )));
                }
            };
            if FIELDS[index] == "Created" {
                raw.created = Some(value);
            } else {
                raw.strings[index] = Some(value);
            }
        }
        Ok(raw)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

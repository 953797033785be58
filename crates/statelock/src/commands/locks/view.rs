//! How locks are shown: one row per lock object, as a table, as Terraform's Lock Info, or
//! as JSON. The age is the record's `Created` when it has one, else the object's time.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_lock::{ListedLock, LockState};
use statelock_store::Version;

/// Raw bytes of an unreadable lock shown at most, so a huge stray object cannot flood the
/// terminal.
const RAW_SHOWN: usize = 2048;

pub struct Row {
    pub lock_key: String,
    pub state_key: Option<StateKey>,
    pub info: Result<LockInfo, Unreadable>,
    pub version: Version,
    pub age: Option<Duration>,
}

pub struct Unreadable {
    pub raw: bytes::Bytes,
    pub reason: String,
}

impl Row {
    pub fn from_state(
        lock_key: String,
        state_key: Option<StateKey>,
        state: LockState,
        modified: Option<SystemTime>,
    ) -> Row {
        let now = Timestamp::now();
        let modified_age = modified.map(|t| Timestamp::from_system_time(t).age_at(now));
        let (info, version, age) = match state {
            LockState::Held(held) => {
                let age = if held.info.created.is_zero() {
                    modified_age
                } else {
                    Some(held.info.created.age_at(now))
                };
                (Ok(held.info), held.version, age)
            }
            LockState::Unreadable {
                raw,
                version,
                reason,
            } => (Err(Unreadable { raw, reason }), version, modified_age),
        };
        Row {
            lock_key,
            state_key,
            info,
            version,
            age,
        }
    }

    pub fn key_text(&self) -> String {
        match &self.state_key {
            Some(k) => k.to_string(),
            None => self.lock_key.clone(),
        }
    }
}

/// The listing as rows, keeping those older than `older_than`; a lock of unknown age is
/// never taken as old.
pub fn rows(locks: Vec<ListedLock>, older_than: Option<Duration>) -> Vec<Row> {
    locks
        .into_iter()
        .map(|l| Row::from_state(l.lock_key, l.state_key, l.state, l.last_modified))
        .filter(|r| older_than.is_none_or(|min| r.age.is_some_and(|age| age > min)))
        .collect()
}

pub fn older_than_note(older_than: Option<Duration>) -> String {
    match older_than {
        Some(d) => format!(" older than {}", age_text(Some(d))),
        None => String::new(),
    }
}

/// `3d4h`, `2h05m`, `7m30s`, `12s`: two units at most, enough to judge staleness.
pub fn age_text(age: Option<Duration>) -> String {
    let Some(age) = age else {
        return "?".to_owned();
    };
    let s = age.as_secs();
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

pub fn table(rows: &[Row]) -> String {
    let header = ["STATE KEY", "LOCK ID", "WHO", "OPERATION", "VERSION", "AGE"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match &r.info {
            Ok(i) => vec![
                r.key_text(),
                i.id.clone(),
                i.who.clone(),
                i.operation.clone(),
                i.version.clone(),
                age_text(r.age),
            ],
            Err(u) => vec![
                r.key_text(),
                format!("UNREADABLE ({})", u.reason),
                "-".into(),
                "-".into(),
                "-".into(),
                age_text(r.age),
            ],
        })
        .collect();
    crate::commands::table::render(&header, &cells)
}

/// One lock in full: Terraform's Lock Info block, or the raw bytes of an unreadable one.
pub fn detail(row: &Row) -> String {
    let mut out = format!(
        "Lock object: {}\nVersion:     {}\nAge:         {}\n",
        row.lock_key,
        row.version.as_str(),
        age_text(row.age)
    );
    match &row.info {
        Ok(info) => out.push_str(&info.render()),
        Err(u) => {
            let _ = writeln!(out, "UNREADABLE: {}", u.reason);
            let shown = &u.raw[..u.raw.len().min(RAW_SHOWN)];
            let _ = writeln!(
                out,
                "Content ({} bytes{}):\n{}",
                u.raw.len(),
                if shown.len() < u.raw.len() {
                    ", truncated"
                } else {
                    ""
                },
                String::from_utf8_lossy(shown)
            );
        }
    }
    out
}

pub fn json_row(row: &Row) -> Value {
    let base = json!({
        "state_key": row.state_key.as_ref().map(ToString::to_string),
        "lock_key": row.lock_key,
        "version": row.version.as_str(),
        "age_seconds": row.age.map(|a| a.as_secs()),
    });
    let Value::Object(mut map) = base else {
        unreachable!("json! of an object literal")
    };
    match &row.info {
        Ok(i) => {
            map.insert("readable".into(), json!(true));
            map.insert(
                "lock".into(),
                json!({
                    "ID": i.id, "Operation": i.operation, "Info": i.info, "Who": i.who,
                    "Version": i.version, "Created": i.created.to_rfc3339(), "Path": i.path,
                }),
            );
        }
        Err(u) => {
            map.insert("readable".into(), json!(false));
            map.insert("error".into(), json!(u.reason));
            map.insert(
                "raw".into(),
                json!(String::from_utf8_lossy(
                    &u.raw[..u.raw.len().min(RAW_SHOWN)]
                )),
            );
        }
    }
    Value::Object(map)
}

pub fn json_rows(rows: &[Row]) -> Value {
    Value::Array(rows.iter().map(json_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        let t = |s| age_text(Some(Duration::from_secs(s)));
        assert_eq!(t(12), "12s");
        assert_eq!(t(450), "7m30s");
        assert_eq!(t(7500), "2h05m");
        assert_eq!(t(3 * 86_400 + 4 * 3600 + 5), "3d4h");
        assert_eq!(age_text(None), "?");
    }

    #[test]
    fn the_table_aligns_and_marks_unreadable_locks() {
        let mut info = LockInfo::new("OperationTypeApply", "ci@runner", "1.10.0");
        info.id = "id-1".into();
        let rows = vec![
            Row {
                lock_key: "a.tflock".into(),
                state_key: Some(StateKey::parse("a").unwrap()),
                info: Ok(info),
                version: Version::new("v1"),
                age: Some(Duration::from_secs(90)),
            },
            Row {
                lock_key: "b.tflock".into(),
                state_key: Some(StateKey::parse("b").unwrap()),
                info: Err(Unreadable {
                    raw: "junk".into(),
                    reason: "malformed".into(),
                }),
                version: Version::new("v2"),
                age: None,
            },
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("STATE KEY  LOCK ID"), "{text}");
        assert!(
            lines[1].contains("ci@runner") && lines[1].ends_with("1m30s"),
            "{text}"
        );
        assert!(lines[2].contains("UNREADABLE (malformed)") && lines[2].ends_with('?'));
        assert_eq!(json_rows(&rows)[1]["readable"], false);
        assert_eq!(json_rows(&rows)[0]["lock"]["Who"], "ci@runner");
    }
}

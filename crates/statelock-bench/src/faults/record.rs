//! The recorded history of a fault run: every client operation with its invocation and
//! completion times and its outcome, kept in memory for the checker and appended as JSON
//! lines to `operations.jsonl` for whoever wants to look again.
//!
//! Outcomes are three-valued, as in Jepsen's histories: `ok` (acknowledged), `refused` (a
//! definite "no": nothing changed, e.g. 409/423) and `unknown` (no reply, a 5xx, a cut
//! connection: it may or may not have happened). The checker treats `unknown` writes as
//! possibly applied, never as proof of anything.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Which protocol a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKind {
    /// Terraform's `http` backend through a replica: fenced writes (`?ID=`).
    Http,
    /// `.tflock` on the bucket (or directory) directly, with `LockClient`; plain writes, as
    /// Terraform's `backend "s3"` makes them.
    Direct,
    /// Terraform's `backend "s3"` protocol through a replica's S3 front: a `.tflock`
    /// PutObject with `If-None-Match`, the state PutObject, then DeleteObject of the lock.
    S3Front,
}

impl ClientKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Http => "http",
            ClientKind::Direct => "direct",
            ClientKind::S3Front => "s3-front",
        }
    }

    /// Whether the server checks this client's writes against the lock holder.
    pub fn fenced(self) -> bool {
        self == ClientKind::Http
    }

    /// Whether its writes go through the state service (and so must be in its history).
    pub fn through_server(self) -> bool {
        self != ClientKind::Direct
    }
}

/// What was attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Lock,
    Get,
    Write,
    Unlock,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Lock => "lock",
            OpKind::Get => "get",
            OpKind::Write => "write",
            OpKind::Unlock => "unlock",
        }
    }
}

/// How it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A definite refusal, with the server's or store's message.
    Refused(String),
    /// No clear answer: it may have happened.
    Unknown(String),
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused(_) => "refused",
            Outcome::Unknown(_) => "unknown",
        }
    }
}

/// One operation.
#[derive(Clone, Debug)]
pub struct Op {
    pub client: String,
    pub kind: ClientKind,
    pub key: String,
    pub op: OpKind,
    /// The lock ID the operation was made under (empty for none).
    pub lock_id: String,
    /// Wall-clock milliseconds since the Unix epoch, so they compare with the store's times.
    pub invoked_ms: u64,
    pub done_ms: u64,
    pub outcome: Outcome,
    /// Writes: the body's tag, its parent's tag, its serial and MD5. Gets: the tag read.
    pub tag: Option<String>,
    pub parent: Option<String>,
    pub serial: Option<u64>,
    pub md5: Option<String>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Every operation of a run, in completion order.
pub struct Recorder {
    ops: Mutex<Vec<Op>>,
    file: Mutex<BufWriter<File>>,
}

impl Recorder {
    pub fn create(path: &Path) -> anyhow::Result<Recorder> {
        Ok(Recorder {
            ops: Mutex::new(Vec::new()),
            file: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    pub fn record(&self, op: Op) {
        let line = serde_json::json!({
            "client": op.client,
            "kind": op.kind.name(),
            "key": op.key,
            "op": op.op.name(),
            "lock_id": op.lock_id,
            "invoked_ms": op.invoked_ms,
            "done_ms": op.done_ms,
            "outcome": op.outcome.name(),
            "message": match &op.outcome {
                Outcome::Ok => None,
                Outcome::Refused(m) | Outcome::Unknown(m) => Some(m.as_str()),
            },
            "tag": op.tag,
            "parent": op.parent,
            "serial": op.serial,
            "md5": op.md5,
        });
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{line}");
        }
        self.ops.lock().expect("recorder lock").push(op);
    }

    /// A copy of every operation so far.
    pub fn ops(&self) -> Vec<Op> {
        if let Ok(mut file) = self.file.lock() {
            let _ = file.flush();
        }
        self.ops.lock().expect("recorder lock").clone()
    }
}

//! The clients of a fault run, one OS thread each, looping over applies until told to stop:
//!
//! - `http`: Terraform's `http` backend sequence through a replica chosen at random (a load
//!   balancer): LOCK `?wait=`, GET, POST `?ID=` of serial + 1, UNLOCK (also after a failed
//!   POST, as Terraform does);
//! - `direct`: `.tflock` on the bucket (or directory) with `LockClient`, retrying a held lock
//!   as `-lock-timeout` does, then a plain state put, as Terraform's `backend "s3"` makes it;
//! - `s3-front`: the same `.tflock` protocol through a replica's S3 front (`If-None-Match`
//!   PutObject of the lock, the state PutObject, DeleteObject of the lock).
//!
//! A client told to die does so mid-apply, holding the lock (after its GET, or while its POST
//! is on the wire), and comes back as a new incarnation; one told to stall sleeps about the
//! TTL or past it between GET and POST, so its lock is taken over (and its write must then be
//! refused) or only just not.

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{LockClient, LockError};
use statelock_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreError};

use super::doc;
use super::record::{ClientKind, Op, OpKind, Outcome, Recorder, now_ms};
use super::schedule::Rng;
use crate::http::{Connection, Reply};

/// Where a live replica answers.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// `127.0.0.1:PORT` of the `http` backend.
    pub http: String,
    /// `http://127.0.0.1:PORT` of the S3 front.
    pub s3: String,
}

/// Builds a store adapter for the S3 front at an endpoint (so this module needs no AWS SDK
/// settings of its own).
pub type FrontStore = dyn Fn(&str) -> anyhow::Result<Arc<dyn ObjectStore>> + Send + Sync;

/// What every client shares.
pub struct Ctx {
    pub rec: Recorder,
    /// Live replicas; `None` while one is down.
    pub replicas: RwLock<Vec<Option<Endpoints>>>,
    pub stop: AtomicBool,
    pub keys: Vec<String>,
    /// `?wait=` of LOCKs, and how long direct clients retry.
    pub lock_wait: Duration,
    pub ttl: Duration,
    /// Stalls start at TTL + 1 s rather than just under the TTL.
    pub stalls_past_ttl: bool,
    /// The store as direct clients reach it.
    pub direct: Arc<dyn ObjectStore>,
    pub bucket: String,
    /// The S3 front's bucket name.
    pub front_bucket: String,
    pub front_store: Box<FrontStore>,
    pub runtime: tokio::runtime::Handle,
    /// Pending client faults, by client index: die or stall at the next chance.
    pub pending: Mutex<Vec<Pending>>,
    /// Client faults actually carried out (mid-apply kills, stalls past the TTL).
    pub kills: AtomicU64,
    pub stalls: AtomicU64,
}

/// A client fault waiting for its client to be mid-apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pending {
    #[default]
    None,
    Kill,
    Stall,
}

/// One client's identity and counters.
pub struct Client {
    pub index: usize,
    pub kind: ClientKind,
    incarnation: u32,
    seq: u64,
    rng: Rng,
}

impl Client {
    pub fn new(index: usize, kind: ClientKind, seed: u64) -> Client {
        Client {
            index,
            kind,
            incarnation: 0,
            seq: 0,
            rng: Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }
    }

    fn name(&self) -> String {
        let letter = match self.kind {
            ClientKind::Http => 'h',
            ClientKind::Direct => 'd',
            ClientKind::S3Front => 's',
        };
        format!("{letter}{}.{}", self.index, self.incarnation)
    }

    /// Applies until `ctx.stop`.
    pub fn run(mut self, ctx: &Ctx) {
        while !ctx.stop.load(Ordering::Relaxed) {
            let key = ctx.keys[self.rng.below(ctx.keys.len() as u64) as usize].clone();
            self.seq += 1;
            let died = match self.kind {
                ClientKind::Http => self.http_apply(ctx, &key),
                ClientKind::Direct => {
                    let store = ctx.direct.clone();
                    self.tflock_apply(ctx, &key, store, ctx.bucket.clone())
                }
                ClientKind::S3Front => match self.replica(ctx) {
                    Some(replica) => match (ctx.front_store)(&replica.s3) {
                        Ok(store) => self.tflock_apply(ctx, &key, store, ctx.front_bucket.clone()),
                        Err(_) => false,
                    },
                    None => false,
                },
            };
            if died {
                // A new process takes the dead one's place after a moment.
                self.incarnation += 1;
                std::thread::sleep(Duration::from_millis(self.rng.between(100, 500)));
            } else {
                std::thread::sleep(Duration::from_millis(self.rng.between(0, 50)));
            }
        }
    }

    fn replica(&mut self, ctx: &Ctx) -> Option<Endpoints> {
        let live: Vec<Endpoints> = ctx
            .replicas
            .read()
            .expect("replica table")
            .iter()
            .flatten()
            .cloned()
            .collect();
        if live.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            return None;
        }
        Some(live[self.rng.below(live.len() as u64) as usize].clone())
    }

    fn take_pending(&self, ctx: &Ctx) -> Pending {
        std::mem::take(&mut ctx.pending.lock().expect("pending faults")[self.index])
    }

    fn op(&self, key: &str, op: OpKind, lock_id: &str, invoked_ms: u64) -> Op {
        Op {
            client: self.name(),
            kind: self.kind,
            key: key.to_owned(),
            op,
            lock_id: lock_id.to_owned(),
            invoked_ms,
            done_ms: now_ms(),
            outcome: Outcome::Ok,
            tag: None,
            parent: None,
            serial: None,
            md5: None,
        }
    }

    /// Sleeps from just under the TTL to well past it: past it, a waiting client takes the
    /// lock over first; around it, the POST races the takeover at the fence.
    fn stall(&mut self, ctx: &Ctx) {
        ctx.stalls.fetch_add(1, Ordering::Relaxed);
        let ttl = ctx.ttl.as_millis() as u64;
        let from = if ctx.stalls_past_ttl {
            ttl + 1_000
        } else {
            ttl.saturating_sub(500)
        };
        let ms = self.rng.between(from, ttl + 3_000);
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// One Terraform apply over the `http` backend; true if the client died in it.
    fn http_apply(&mut self, ctx: &Ctx, key: &str) -> bool {
        let Some(replica) = self.replica(ctx) else {
            return false;
        };
        let path = format!("/v1/states/{key}");
        let who = format!("faults-{}@127.0.0.1", self.name());
        let info = LockInfo::new("OperationTypeApply", &who, "1.15.5");
        let id = info.id.clone();
        let invoked = now_ms();
        let mut conn = match Connection::open(&replica.http) {
            Ok(c) => c,
            Err(e) => {
                let mut op = self.op(key, OpKind::Lock, &id, invoked);
                op.outcome = Outcome::Refused(format!("connect: {e:#}"));
                ctx.rec.record(op);
                return false;
            }
        };
        let _ = conn.set_timeout(ctx.lock_wait + Duration::from_secs(30));
        let wait = format!("{path}?wait={}s", ctx.lock_wait.as_secs());
        let reply = conn.request("LOCK", &wait, info.encode().as_bytes());
        let mut op = self.op(key, OpKind::Lock, &id, invoked);
        op.outcome = http_outcome(&reply);
        let locked = op.outcome == Outcome::Ok;
        ctx.rec.record(op);
        if !locked {
            // A LOCK whose reply was lost may have landed: Terraform then unlocks (it does on
            // every error path after trying to lock).
            if reply.is_err() || reply.as_ref().is_ok_and(|r| r.status >= 500) {
                self.http_unlock(ctx, key, &replica.http, &path, &info);
            }
            return false;
        }

        let invoked = now_ms();
        let reply = conn.request("GET", &path, b"");
        let mut op = self.op(key, OpKind::Get, &id, invoked);
        op.outcome = http_outcome(&reply);
        let parent = match &reply {
            Ok(r) if r.status == 200 => match doc::parse(&r.body) {
                Ok(p) => Some(p),
                Err(e) => {
                    op.outcome = Outcome::Unknown(format!("unreadable state: {e}"));
                    None
                }
            },
            _ => None,
        };
        op.tag = parent.as_ref().map(|p| p.tag.clone());
        ctx.rec.record(op);
        let Some(parent) = parent else {
            self.http_unlock_on(ctx, key, &mut conn, &path, &info);
            return false;
        };

        let tag = format!("{}#{}", self.name(), self.seq);
        let serial = parent.serial + 1;
        let body = doc::body(serial, &tag, &parent.tag);
        let write_path = format!("{path}?ID={id}");
        let mut op = self.op(key, OpKind::Write, &id, 0);
        op.tag = Some(tag);
        op.parent = Some(parent.tag);
        op.serial = Some(serial);
        op.md5 = Some(doc::md5_hex(&body));
        match self.take_pending(ctx) {
            Pending::Kill => {
                ctx.kills.fetch_add(1, Ordering::Relaxed);
                if self.rng.below(2) == 0 {
                    // Killed while the POST is on the wire: it may or may not land.
                    op.invoked_ms = now_ms();
                    send_and_hang_up(&replica.http, &write_path, &body);
                    op.done_ms = now_ms();
                    op.outcome = Outcome::Unknown("client killed while its POST was sent".into());
                    ctx.rec.record(op);
                }
                return true;
            }
            Pending::Stall => self.stall(ctx),
            Pending::None => {}
        }
        op.invoked_ms = now_ms();
        let reply = conn.request("POST", &write_path, &body);
        op.done_ms = now_ms();
        op.outcome = http_outcome(&reply);
        ctx.rec.record(op);
        self.http_unlock_on(ctx, key, &mut conn, &path, &info);
        false
    }

    fn http_unlock(&self, ctx: &Ctx, key: &str, addr: &str, path: &str, info: &LockInfo) {
        let invoked = now_ms();
        match Connection::open(addr) {
            Ok(mut conn) => {
                let _ = conn.set_timeout(Duration::from_secs(30));
                self.http_unlock_on(ctx, key, &mut conn, path, info);
            }
            Err(e) => {
                let mut op = self.op(key, OpKind::Unlock, &info.id, invoked);
                op.outcome = Outcome::Unknown(format!("connect: {e:#}"));
                ctx.rec.record(op);
            }
        }
    }

    fn http_unlock_on(
        &self,
        ctx: &Ctx,
        key: &str,
        conn: &mut Connection,
        path: &str,
        info: &LockInfo,
    ) {
        let invoked = now_ms();
        let reply = conn.request("UNLOCK", path, info.encode().as_bytes());
        let mut op = self.op(key, OpKind::Unlock, &info.id, invoked);
        op.outcome = http_outcome(&reply);
        ctx.rec.record(op);
    }

    /// One apply with the `.tflock` protocol on `store` (the bucket, or a replica's S3 front).
    fn tflock_apply(
        &mut self,
        ctx: &Ctx,
        key: &str,
        store: Arc<dyn ObjectStore>,
        bucket: String,
    ) -> bool {
        let state_key = StateKey::parse(key).expect("a valid key");
        let locks = LockClient::new(store.clone(), bucket);
        let who = format!("faults-{}@127.0.0.1", self.name());
        let info = locks.record_for(
            &state_key,
            LockInfo::new("OperationTypeApply", &who, "1.15.5"),
        );
        let id = info.id.clone();
        let rt = ctx.runtime.clone();

        // Lock, retrying a held lock as `-lock-timeout` does.
        let invoked = now_ms();
        let deadline = std::time::Instant::now() + ctx.lock_wait;
        let outcome = loop {
            match rt.block_on(locks.acquire(&state_key, info.clone())) {
                Ok(_) => break Outcome::Ok,
                Err(LockError::Held { .. })
                    if std::time::Instant::now() < deadline
                        && !ctx.stop.load(Ordering::Relaxed) =>
                {
                    std::thread::sleep(Duration::from_millis(self.rng.between(100, 400)));
                }
                Err(e @ LockError::Held { .. }) => break Outcome::Refused(e.to_string()),
                Err(e) => break Outcome::Unknown(e.to_string()),
            }
        };
        let mut op = self.op(key, OpKind::Lock, &id, invoked);
        op.outcome = outcome;
        let locked = op.outcome == Outcome::Ok;
        let ambiguous = matches!(op.outcome, Outcome::Unknown(_));
        ctx.rec.record(op);
        if !locked {
            if ambiguous {
                self.tflock_unlock(ctx, key, &locks, &state_key, &id);
            }
            return false;
        }

        let invoked = now_ms();
        let read = rt.block_on(store.get_if_exists(key));
        let mut op = self.op(key, OpKind::Get, &id, invoked);
        let parent = match read {
            Ok(Some(found)) => match doc::parse(&found.body) {
                Ok(p) => Some(p),
                Err(e) => {
                    op.outcome = Outcome::Unknown(format!("unreadable state: {e}"));
                    None
                }
            },
            Ok(None) => {
                op.outcome = Outcome::Unknown("no state".into());
                None
            }
            Err(e) => {
                op.outcome = store_outcome(&e);
                None
            }
        };
        op.tag = parent.as_ref().map(|p| p.tag.clone());
        ctx.rec.record(op);
        let Some(parent) = parent else {
            self.tflock_unlock(ctx, key, &locks, &state_key, &id);
            return false;
        };
        if self.take_pending(ctx) == Pending::Kill {
            ctx.kills.fetch_add(1, Ordering::Relaxed);
            return true;
        }

        let tag = format!("{}#{}", self.name(), self.seq);
        let serial = parent.serial + 1;
        let body = doc::body(serial, &tag, &parent.tag);
        let mut op = self.op(key, OpKind::Write, &id, now_ms());
        op.tag = Some(tag);
        op.parent = Some(parent.tag);
        op.serial = Some(serial);
        op.md5 = Some(doc::md5_hex(&body));
        let put =
            rt.block_on(store.put(key, Bytes::from(body), PutOptions::json(PutMode::Overwrite)));
        op.done_ms = now_ms();
        op.outcome = match put {
            Ok(_) => Outcome::Ok,
            Err(e) => store_outcome(&e),
        };
        ctx.rec.record(op);
        self.tflock_unlock(ctx, key, &locks, &state_key, &id);
        false
    }

    fn tflock_unlock(
        &self,
        ctx: &Ctx,
        key: &str,
        locks: &LockClient,
        state_key: &StateKey,
        id: &str,
    ) {
        let invoked = now_ms();
        let released = ctx.runtime.block_on(locks.release(state_key, id));
        let mut op = self.op(key, OpKind::Unlock, id, invoked);
        op.outcome = match released {
            Ok(_) => Outcome::Ok,
            Err(
                e @ (LockError::Held { .. }
                | LockError::NotLocked { .. }
                | LockError::IdMismatch { .. }),
            ) => Outcome::Refused(e.to_string()),
            Err(e) => Outcome::Unknown(e.to_string()),
        };
        ctx.rec.record(op);
    }
}

/// 200 is ok, another 4xx a definite refusal, a 5xx or no reply unknown.
fn http_outcome(reply: &anyhow::Result<Reply>) -> Outcome {
    match reply {
        Ok(r) if r.status == 200 => Outcome::Ok,
        Ok(r) => {
            let text = String::from_utf8_lossy(&r.body[..r.body.len().min(300)]);
            let message = format!("{}: {}", r.status, text.trim());
            if (400..500).contains(&r.status) {
                Outcome::Refused(message)
            } else {
                Outcome::Unknown(message)
            }
        }
        Err(e) => Outcome::Unknown(format!("{e:#}")),
    }
}

fn store_outcome(e: &StoreError) -> Outcome {
    match e {
        StoreError::Precondition { .. } | StoreError::AlreadyExists { .. } => {
            Outcome::Refused(e.to_string())
        }
        _ => Outcome::Unknown(e.to_string()),
    }
}

/// Writes a whole POST and closes the connection at once, as a client killed right after
/// sending would.
fn send_and_hang_up(addr: &str, path: &str, body: &[u8]) {
    if let Ok(mut stream) = TcpStream::connect(addr) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    }
}

//! The processes under test and their faults: the `statelock serve` replicas, the store
//! (a restartable SeaweedFS behind the fault proxy, or a local directory), and, at the end,
//! reading everything back for the checker through the versions API and the storage port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{LockClient, LockState};
use statelock_store::{LocalStore, ObjectStore, ObjectStoreExt, S3Config, S3Store};
use statelock_test_support::{ACCESS_KEY, REGION, RestartableSeaweedFs, SECRET_KEY};
use tokio::runtime::Handle;

use super::check::{Observed, Seen, Source};
use super::clients::{Ctx, Endpoints, FrontStore};
use super::doc;
use super::proxy::{Mode, Proxy};
use super::record::{ClientKind, Op, OpKind, Outcome, Recorder, now_ms};
use super::schedule::{Fault, FaultKind};
use super::{FaultArgs, StoreKind};
use crate::http::Connection;
use crate::server::{Server, Store};

/// The bucket the replicas' S3 fronts serve (`--bucket-name`).
pub const FRONT_BUCKET: &str = "faults";

/// The SeaweedFS bucket.
const BUCKET: &str = "statelock-faults";

enum Backing {
    S3 {
        seaweed: Box<RestartableSeaweedFs>,
        proxy: Proxy,
        /// `http://<proxy>`: what replicas and direct clients use.
        via_proxy: String,
        aws_env: Vec<(&'static str, String)>,
    },
    Local {
        dir: PathBuf,
    },
}

/// Replicas, store and proxy.
pub struct Cluster {
    binary: PathBuf,
    flags: Vec<String>,
    env: Vec<(String, String)>,
    work: PathBuf,
    backing: Backing,
    replicas: Vec<Option<Server>>,
    starts: usize,
    rt: Handle,
    /// The store as the direct clients reach it (through the proxy, for S3).
    direct: Arc<dyn ObjectStore>,
    /// The store as the checker reads it: never through the proxy.
    checker: Arc<dyn ObjectStore>,
}

fn s3_store(
    rt: &Handle,
    endpoint: &str,
    bucket: &str,
    timeout: Duration,
) -> anyhow::Result<S3Store> {
    let config = S3Config::new(bucket)
        .endpoint(endpoint)
        .path_style(true)
        .region(REGION)
        .static_credentials(ACCESS_KEY, SECRET_KEY)
        .attempt_timeout(timeout)
        .operation_timeout(timeout * 2);
    Ok(rt.block_on(S3Store::connect(config))?)
}

impl Cluster {
    pub fn start(
        args: &FaultArgs,
        binary: &Path,
        work: &Path,
        env: Vec<(String, String)>,
        rt: &Handle,
    ) -> anyhow::Result<Cluster> {
        let flags = vec![
            "--lock-ttl".to_owned(),
            format!("{}s", args.lock_ttl.as_secs().max(1)),
            "--lock-poll-interval".to_owned(),
            "200ms".to_owned(),
            "--lock-wait".to_owned(),
            format!("{}s", args.lock_wait.as_secs().max(1)),
            "--history-retention".to_owned(),
            "0".to_owned(),
            "--bucket-name".to_owned(),
            FRONT_BUCKET.to_owned(),
        ];
        let (backing, direct, checker): (Backing, Arc<dyn ObjectStore>, Arc<dyn ObjectStore>) =
            match args.store {
                StoreKind::Seaweedfs => {
                    let seaweed = Box::new(RestartableSeaweedFs::start(&work.join("seaweedfs")));
                    seaweed.server().create_bucket(BUCKET, true);
                    let upstream = seaweed
                        .server()
                        .endpoint
                        .strip_prefix("http://")
                        .context("an http endpoint")?
                        .to_owned();
                    let proxy = Proxy::start(&upstream)?;
                    let via_proxy = format!("http://{}", proxy.addr);
                    let direct = s3_store(rt, &via_proxy, BUCKET, Duration::from_secs(10))?;
                    let checker = s3_store(
                        rt,
                        &seaweed.server().endpoint,
                        BUCKET,
                        Duration::from_secs(60),
                    )?;
                    let aws_env = seaweed.server().aws_env();
                    (
                        Backing::S3 {
                            seaweed,
                            proxy,
                            via_proxy,
                            aws_env,
                        },
                        Arc::new(direct),
                        Arc::new(checker),
                    )
                }
                StoreKind::Local => {
                    let dir = work.join("data");
                    std::fs::create_dir_all(&dir)?;
                    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(&dir)?);
                    (Backing::Local { dir }, store.clone(), store)
                }
            };
        let mut cluster = Cluster {
            binary: binary.to_owned(),
            flags,
            env,
            work: work.to_owned(),
            backing,
            replicas: Vec::new(),
            starts: 0,
            rt: rt.clone(),
            direct,
            checker,
        };
        for _ in 0..args.replicas {
            let server = cluster.start_replica()?;
            cluster.replicas.push(Some(server));
        }
        Ok(cluster)
    }

    /// The bucket name in direct clients' lock records.
    pub fn bucket(&self) -> &str {
        match &self.backing {
            Backing::S3 { .. } => BUCKET,
            Backing::Local { .. } => "data",
        }
    }

    fn start_replica(&mut self) -> anyhow::Result<Server> {
        let mut last = None;
        for _ in 0..20 {
            self.starts += 1;
            let log_dir = self.work.join(format!("replica-start-{}", self.starts));
            std::fs::create_dir_all(&log_dir)?;
            let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
            let store = match &self.backing {
                Backing::S3 {
                    via_proxy, aws_env, ..
                } => Store::Endpoint {
                    endpoint: via_proxy,
                    bucket: BUCKET,
                    env: aws_env,
                },
                Backing::Local { dir } => Store::Dir(dir),
            };
            match Server::start_with_s3_front_and_env(
                &self.binary,
                store,
                &flags,
                &self.env,
                &log_dir,
            ) {
                Ok(server) => return Ok(server),
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        Err(last.expect("at least one attempt")).context("start a replica")
    }

    pub fn endpoints(&self) -> Vec<Option<Endpoints>> {
        self.replicas
            .iter()
            .map(|r| {
                r.as_ref().map(|s| Endpoints {
                    http: s.addr.clone(),
                    s3: s.s3_endpoint.clone().unwrap_or_default(),
                })
            })
            .collect()
    }

    pub fn direct_store(&self) -> Arc<dyn ObjectStore> {
        self.direct.clone()
    }

    /// Builds (and caches) a store adapter for each S3 front endpoint.
    pub fn front_store_builder(&self) -> Box<FrontStore> {
        let rt = self.rt.clone();
        let cache: Mutex<HashMap<String, Arc<dyn ObjectStore>>> = Mutex::default();
        Box::new(move |endpoint: &str| {
            if let Some(store) = cache.lock().expect("front cache").get(endpoint) {
                return Ok(store.clone());
            }
            // The front's lock PutObject waits in its queue for up to --lock-wait.
            let store: Arc<dyn ObjectStore> = Arc::new(s3_store(
                &rt,
                endpoint,
                FRONT_BUCKET,
                Duration::from_secs(60),
            )?);
            cache
                .lock()
                .expect("front cache")
                .insert(endpoint.to_owned(), store.clone());
            Ok(store)
        })
    }

    pub fn lost_replies(&self) -> u64 {
        match &self.backing {
            Backing::S3 { proxy, .. } => proxy.lost_replies(),
            Backing::Local { .. } => 0,
        }
    }

    /// Writes the first state of `key` (no lock), recorded as the seed write.
    pub fn seed_state(&self, key: &str, rec: &Recorder) -> anyhow::Result<()> {
        let server = self.replicas[0].as_ref().context("replica 0")?;
        let body = doc::body(1, doc::SEED_TAG, "");
        let invoked = now_ms();
        let mut conn = Connection::open(&server.addr)?;
        conn.request("POST", &Server::path(key), &body)?
            .expect(200, "seed POST")?;
        rec.record(Op {
            client: "seed".into(),
            kind: ClientKind::Http,
            key: key.to_owned(),
            op: OpKind::Write,
            lock_id: String::new(),
            invoked_ms: invoked,
            done_ms: now_ms(),
            outcome: Outcome::Ok,
            tag: Some(doc::SEED_TAG.into()),
            parent: Some(String::new()),
            serial: Some(1),
            md5: Some(doc::md5_hex(&body)),
        });
        Ok(())
    }

    /// Carries out one fault (client faults are the clients' own); false if it could not be.
    pub fn inject(&mut self, fault: &Fault, ctx: &Ctx) -> anyhow::Result<bool> {
        match fault.kind {
            FaultKind::ReplicaKill => {
                let i = (fault.target % self.replicas.len() as u64) as usize;
                ctx.replicas.write().expect("replicas")[i] = None;
                if let Some(server) = self.replicas[i].take() {
                    signal(server.pid(), libc::SIGKILL);
                    drop(server);
                }
                std::thread::sleep(fault.duration);
                let server = self.start_replica()?;
                self.replicas[i] = Some(server);
                ctx.replicas.write().expect("replicas")[i] = self.endpoints()[i].clone();
            }
            FaultKind::ReplicaPause => {
                let i = (fault.target % self.replicas.len() as u64) as usize;
                let Some(server) = &self.replicas[i] else {
                    return Ok(false);
                };
                signal(server.pid(), libc::SIGSTOP);
                std::thread::sleep(fault.duration);
                signal(server.pid(), libc::SIGCONT);
            }
            FaultKind::StorePause | FaultKind::StoreKill => {
                let Backing::S3 { seaweed, .. } = &mut self.backing else {
                    return Ok(false);
                };
                let pid = seaweed.pid().context("SeaweedFS pid")?;
                if fault.kind == FaultKind::StorePause {
                    signal(pid, libc::SIGSTOP);
                    std::thread::sleep(fault.duration);
                    signal(pid, libc::SIGCONT);
                } else {
                    signal(pid, libc::SIGKILL);
                    std::thread::sleep(fault.duration / 4);
                    seaweed.restart();
                }
            }
            FaultKind::StoreLatency | FaultKind::LostReplies => {
                let Backing::S3 { proxy, .. } = &self.backing else {
                    return Ok(false);
                };
                if fault.kind == FaultKind::StoreLatency {
                    proxy.set(Mode::Delay(fault.latency));
                    std::thread::sleep(fault.duration);
                } else {
                    // Short: every request in the window fails, so a long one is an outage.
                    proxy.set(Mode::LoseReplies);
                    std::thread::sleep((fault.duration / 8).min(Duration::from_millis(400)));
                }
                proxy.set(Mode::Pass);
            }
            FaultKind::ClientKill | FaultKind::ClientStall => return Ok(false),
        }
        Ok(true)
    }

    /// Ends every fault: all processes running and resumed, the proxy passing traffic.
    pub fn heal(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        if let Backing::S3 { seaweed, proxy, .. } = &mut self.backing {
            proxy.set(Mode::Pass);
            if let Some(pid) = seaweed.pid() {
                signal(pid, libc::SIGCONT);
            }
        }
        for i in 0..self.replicas.len() {
            match &self.replicas[i] {
                Some(server) => signal(server.pid(), libc::SIGCONT),
                None => {
                    let server = self.start_replica()?;
                    self.replicas[i] = Some(server);
                }
            }
        }
        *ctx.replicas.write().expect("replicas") = self.endpoints();
        Ok(())
    }

    /// Reads each state back for the checker: the lock, a final takeover check, the server
    /// history, the bucket's object versions and the current state.
    pub fn observe(&self, keys: &[String], ttl: Duration) -> anyhow::Result<Vec<Observed>> {
        let server = self.replicas[0].as_ref().context("replica 0")?;
        let locks = LockClient::new(self.checker.clone(), self.bucket());
        let mut all = Vec::new();
        for key in keys {
            let state_key = StateKey::parse(key)?;
            let lock_at_end = match self.rt.block_on(locks.inspect(&state_key))? {
                None => None,
                Some(LockState::Held(held)) => Some(held.info.id),
                Some(LockState::Unreadable { reason, .. }) => {
                    Some(format!("<unreadable: {reason}>"))
                }
            };
            let final_lock = final_lock(&server.addr, key, ttl);
            let current = self
                .rt
                .block_on(self.checker.get_if_exists(key))
                .map(|found| found.map(|f| f.body.to_vec()))
                .map_err(|e| e.to_string());
            let mut versions = server_history(&server.addr, key)?;
            if matches!(self.backing, Backing::S3 { .. }) {
                versions.extend(self.object_versions(key)?);
            }
            all.push(Observed {
                key: key.clone(),
                versions,
                current,
                lock_at_end,
                final_lock,
            });
        }
        Ok(all)
    }

    fn object_versions(&self, key: &str) -> anyhow::Result<Vec<Seen>> {
        let mut listed = self.rt.block_on(self.checker.list_versions(key))?;
        listed.reverse();
        Ok(listed
            .into_iter()
            .filter(|v| !v.is_delete_marker)
            .map(|v| {
                let body = self
                    .rt
                    .block_on(self.checker.get_version(key, &v.version_id))
                    .map(|found| found.body.to_vec())
                    .map_err(|e| e.to_string());
                let etag = v.version.as_str().trim_matches('"').to_owned();
                Seen {
                    id: format!("s3:{}", v.version_id),
                    time_ms: v
                        .last_modified
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as u64),
                    source: Source::ObjectVersion {
                        md5: (etag.len() == 32).then_some(etag),
                    },
                    body,
                }
            })
            .collect())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stopped processes would not die of SIGTERM; the servers' own drops kill them.
        for server in self.replicas.iter().flatten() {
            signal(server.pid(), libc::SIGCONT);
        }
        if let Backing::S3 { seaweed, .. } = &self.backing
            && let Some(pid) = seaweed.pid()
        {
            signal(pid, libc::SIGCONT);
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child's.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// A new client must get the lock within the TTL (plus the store's one-second timestamps
/// and a poll interval): else a lock is left behind that nobody can recover.
fn final_lock(addr: &str, key: &str, ttl: Duration) -> Result<(), String> {
    let limit = ttl + Duration::from_secs(4);
    let info = LockInfo::new("OperationTypeApply", "faults-checker@127.0.0.1", "1.15.5");
    let path = Server::path(key);
    let started = Instant::now();
    let result = (|| -> anyhow::Result<()> {
        let mut conn = Connection::open(addr)?;
        conn.set_timeout(limit + Duration::from_secs(30))?;
        let wait = format!("{path}?wait={}s", limit.as_secs() + 10);
        conn.request("LOCK", &wait, info.encode().as_bytes())?
            .expect(200, "LOCK")?;
        let took = started.elapsed();
        conn.request("UNLOCK", &path, info.encode().as_bytes())?
            .expect(200, "UNLOCK")?;
        if took > limit {
            bail!("a new client got the lock only after {took:.1?}, beyond the TTL of {ttl:?}");
        }
        Ok(())
    })();
    result.map_err(|e| format!("the final lock check failed: {e:#}"))
}

/// The server history, oldest first, with each body.
fn server_history(addr: &str, key: &str) -> anyhow::Result<Vec<Seen>> {
    let mut conn = Connection::open(addr)?;
    conn.set_timeout(Duration::from_secs(120))?;
    let listing = conn
        .request("GET", &format!("/v1/api/states/{key}/versions"), b"")?
        .expect(200, "versions")?;
    let listing: serde_json::Value = serde_json::from_slice(&listing.body)?;
    let mut seen = Vec::new();
    for v in listing["versions"]
        .as_array()
        .context("versions")?
        .iter()
        .rev()
    {
        let id = v["id"].as_str().context("version id")?.to_owned();
        let reply = conn.request("GET", &format!("/v1/api/states/{key}/versions/{id}"), b"")?;
        let body = if reply.status == 200 {
            Ok(reply.body)
        } else {
            Err(format!(
                "{}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ))
        };
        let time_ms = v["time"]
            .as_str()
            .and_then(|t| statelock_core::Timestamp::parse_rfc3339(t).ok())
            .map(|t| t.unix_secs() as u64 * 1000 + u64::from(t.subsec_nanos()) / 1_000_000);
        seen.push(Seen {
            id,
            time_ms,
            source: Source::ServerHistory {
                kind: v["kind"].as_str().unwrap_or("?").to_owned(),
                md5: v["md5"].as_str().map(str::to_owned),
                lock_id: v["lock_id"].as_str().map(str::to_owned),
                who: v["who"].as_str().unwrap_or_default().to_owned(),
            },
            body,
        });
    }
    Ok(seen)
}

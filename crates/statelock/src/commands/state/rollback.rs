//! `state rollback KEY --to VERSION`: copies a version forward as the next serial on the same
//! lineage, holding the state's `.tflock` lock, and writes it with compare-and-swap.
//!
//! Order: read the version and the current state → plan ([`plan_rollback`], shared with the
//! server) → show and ask, all without the lock (`--dry-run` stops there) → lock (refused,
//! naming the holder, if someone has it) → re-read the state and refuse if it is no longer the
//! one confirmed → write with compare-and-swap → DynamoDB digest → release the lock, on every
//! path, including Ctrl-C and SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use serde_json::json;
use statelock_core::state::{
    RollbackError, RollbackPlan, StateDiff, diff, lineage_text, plan_rollback,
};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{HeldLock, LockClient, LockError, LockState, user_at_host};
use statelock_state::history::{self, Author, Kind, md5_hex};
use statelock_store::{GetResult, ObjectStore, ObjectStoreExt, PutMode, PutOptions, StoreError};

use super::KeyArgs;
use super::digest::{self, DigestArgs, DigestTarget, DigestUpdate};
use super::versions::{self, Fetched};
use crate::commands::locks::state_key;
use crate::commands::nothing_or_refused;
use crate::commands::prompt::{Answer, confirm};
use crate::store_url::StoreUrl;

/// The lock record's `Operation` while a rollback runs.
pub const OPERATION: &str = "statelock state rollback";

pub const ABOUT: &str = "\
Roll a state back to an earlier version: its content is written as a new state with serial =
current serial + 1 and the current lineage, so Terraform and OpenTofu read it as the next state
(and `terraform apply` carries on from it).

The plan and the changes from the current state are shown first, without locking; on a
terminal you are asked to confirm (--yes skips that; --dry-run stops there). Only then is the
state's .tflock lock taken (Who = user@host, Operation = \"statelock state rollback\"); if
someone else holds it, nothing is written and the holder is named. If the state changed since
it was shown, or the lock was taken over (force-unlocked and taken) before the write, nothing
is written and you are told why. The write is a
compare-and-swap on the state confirmed, so a writer that ignores the lock is detected, not
overwritten. The lock is released on every path, Ctrl-C and SIGTERM included. On an S3 store
the lock is only taken once the store has shown it honours If-None-Match / If-Match (the check
`statelock serve` makes); a store that ignores them is refused unless --allow-unsafe-store. A version of
another lineage is refused unless --force (the copy then gets the current lineage). A version
that holds what the current state holds is \"no changes\": nothing is written unless --force.
The copy keeps the version's key order and layout; only serial and lineage are replaced.

If the backend also sets dynamodb_table, pass --dynamodb-table: the state's `-md5` digest item
is then set to the new MD5 right after the write, as Terraform does after each write (without
it, Terraform with dynamodb_table refuses the rolled-back state). Without the flag the command
prints the new MD5 and the `aws dynamodb put-item` that updates it.

Example:
  statelock state history team-a/app.tfstate --store s3://tf-state
  statelock state rollback team-a/app.tfstate --to <VERSION> --store s3://tf-state \\
      --dynamodb-table tf-locks";

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: KeyArgs,

    /// The version to roll back to: an ID from `statelock state history`.
    #[arg(long, value_name = "VERSION")]
    pub to: String,

    /// Roll back to a version of another lineage (it gets the current lineage).
    #[arg(long)]
    pub force: bool,

    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Show what would be written, without locking or writing.
    #[arg(long)]
    pub dry_run: bool,

    /// The result as one JSON object on stdout (the plan goes to stderr).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub dynamodb: DigestArgs,
}

/// Everything read and planned before the write.
struct Prepared {
    version: Fetched,
    current: Option<GetResult>,
    plan: RollbackPlan,
    changes: Option<StateDiff>,
}

/// Why the command refuses (exit code 2), worded for the operator.
struct Refusal(String);

pub async fn run(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let store = args.target.store.open().await?;
    let bucket = args.target.store.bucket()?;
    rollback(store, bucket, &args).await
}

async fn rollback(
    store: Arc<dyn ObjectStore>,
    bucket: String,
    args: &RollbackArgs,
) -> anyhow::Result<ExitCode> {
    let key = state_key(&args.target.key)?;
    // Before anything is shown or locked: a table that cannot be reached fails the command
    // while nothing has changed.
    let digest_target = DigestTarget::connect(
        &args.dynamodb,
        &args.target.store.url()?,
        &key,
        args.target.store.s3.s3_region.clone(),
    )
    .await?;
    // Planned, shown and confirmed without the lock, so an operator who walks away from the
    // prompt (or interrupts it) blocks nobody; the write below refuses if the state moved.
    let p = match prepare(&*store, &key, args).await? {
        Ok(p) => p,
        Err(refusal) => return Ok(refuse(refusal)),
    };
    if p.plan.same_as_current && !args.force {
        eprintln!(
            "no changes: version {} holds what the current state of {key} holds; nothing was \
             written (--force writes it anyway, as a new serial)",
            args.to
        );
        if args.json {
            let doc = json!({"key": key.as_str(), "rolled_back_to": args.to, "no_changes": true});
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    show_plan(&key, &p, args);
    if args.dry_run {
        if args.json {
            let mut doc = summary_json(&key, &p, &md5_hex(&p.plan.body));
            doc["dry_run"] = json!(true);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        eprintln!("dry run: nothing was written");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(refusal) = ask(args)? {
        return Ok(refuse(refusal));
    }
    if args.target.store.url()?.is_remote() {
        // The lock and the compare-and-swap both rest on conditional writes.
        let allow_unsafe = args.target.store.s3.allow_unsafe_store;
        crate::store_check::check_conditional_writes(&*store, allow_unsafe, "roll back").await?;
    }
    let locks = LockClient::new(store.clone(), bucket);
    let mut info = LockInfo::new(OPERATION, &user_at_host(), env!("CARGO_PKG_VERSION"));
    info.info = format!("rolling back to version {}", args.to);
    let lock = match locks.acquire(&key, info).await {
        Ok(acquired) => acquired.lock,
        Err(e @ (LockError::Held { .. } | LockError::Unreadable { .. })) => {
            return Ok(refuse(Refusal(format!("{e}"))));
        }
        Err(e) => return Err(e.into()),
    };
    // A signal must not leave the lock behind: the locked work is dropped and the lock released.
    let outcome = tokio::select! {
        outcome = locked(&locks, &lock, args, &p, digest_target.as_ref()) => outcome,
        () = crate::signals::shutdown_signal() => Err(anyhow::anyhow!(
            "interrupted; the rollback of {key} may or may not have been written: check \
             `statelock state show {key}`"
        )),
    };
    let outcome = match outcome {
        // Not ours to release, and its holder must not be told to unlock our ID.
        Ok(Locked::TakenOver(refusal)) => return Ok(refuse(refusal)),
        Ok(Locked::Written(written)) => Ok(Ok(written)),
        Ok(Locked::Refused(refusal)) => Ok(Err(refusal)),
        Err(e) => Err(e),
    };
    let released = locks.release(&key, &lock.info.id).await;
    let not_released = |e: &LockError| {
        eprintln!(
            "statelock: could not release the lock {} on {key}: {e}\n{}",
            lock.info.id,
            unlock_hint(&key, &lock)
        );
    };
    let written = match outcome {
        Ok(Ok(written)) => written,
        Ok(Err(refusal)) => {
            if let Err(e) = &released {
                not_released(e);
            }
            return Ok(refuse(refusal));
        }
        Err(e) => {
            if let Err(e) = &released {
                not_released(e);
            }
            return Err(e);
        }
    };
    // The state is written whatever happens now: report it first, then what failed.
    report(&key, &p, args, &written, released.is_ok());
    if let Err(e) = released {
        eprintln!(
            "statelock: warning: rolled back (serial {} written) but the lock could not be \
             released: {e}\n{}",
            p.plan.serial,
            unlock_hint(&key, &lock)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn unlock_hint(key: &StateKey, lock: &HeldLock) -> String {
    format!(
        "Remove it with `statelock locks unlock {key} --id {}`.",
        lock.info.id
    )
}

fn refuse(refusal: Refusal) -> ExitCode {
    eprintln!("statelock: refused, nothing was written: {}", refusal.0);
    nothing_or_refused()
}

/// Asks the operator unless `--yes`; the refusal when the answer is not yes.
fn ask(args: &RollbackArgs) -> anyhow::Result<Option<Refusal>> {
    if args.yes {
        return Ok(None);
    }
    Ok(match confirm("Write this state?")? {
        Answer::Yes => None,
        Answer::NoTerminal => Some(Refusal(
            "not asking without a terminal; pass --yes to roll back".to_owned(),
        )),
        Answer::No => Some(Refusal("not confirmed".to_owned())),
    })
}

/// How the locked section ended.
enum Locked {
    Written(Written),
    /// Nothing was written.
    Refused(Refusal),
    /// Someone else holds the lock now: nothing was written, and there is nothing to release.
    TakenOver(Refusal),
}

/// Under the lock: check the state is the one confirmed and the lock still ours, write the
/// state, update the digest.
async fn locked(
    locks: &LockClient,
    lock: &HeldLock,
    args: &RollbackArgs,
    p: &Prepared,
    digest_target: Option<&DigestTarget>,
) -> anyhow::Result<Locked> {
    let (store, key) = (&**locks.store(), &lock.key);
    let now = store.get_if_exists(key.as_str()).await?;
    let confirmed = p.current.as_ref().map(|c| &c.meta.version);
    if now.as_ref().map(|c| &c.meta.version) != confirmed {
        return Ok(Locked::Refused(Refusal(format!(
            "the state {key} changed since you confirmed; run again"
        ))));
    }
    let in_server_history = server_serves(store, args, key).await?;
    // Last check before the write: a lock broken and taken by someone else meanwhile (a
    // force-unlock, a TTL takeover) means they may be writing this state now.
    if let Some(holder) = lost_to(locks, lock).await? {
        return Ok(Locked::TakenOver(Refusal(format!(
            "your lock on {key} was taken over by {holder}"
        ))));
    }
    let mode = match confirmed {
        Some(version) => PutMode::Update(version.clone()),
        None => PutMode::Create,
    };
    let body = Bytes::from(p.plan.body.clone());
    // Content-MD5 as Terraform's SDK-v1 S3 backend sends it, which Object Lock buckets need.
    let options = PutOptions::json(mode).with_content_md5();
    let put = if in_server_history {
        let author = Author {
            kind: Kind::Rollback,
            who: lock.info.who.clone(),
            lock_id: Some(lock.info.id.clone()),
        };
        // Retention 0: pruning is left to the server's next write, with its own setting.
        history::write_state(store, 0, key, body.clone(), options, author).await
    } else {
        store.put(key.as_str(), body.clone(), options).await
    };
    match put {
        Ok(_) => {}
        Err(StoreError::Precondition { .. } | StoreError::AlreadyExists { .. }) => {
            anyhow::bail!(
                "state {key} was changed by a writer that ignored the lock during the rollback; nothing was written"
            );
        }
        Err(e) => return Err(e.into()),
    }
    // Nothing after the put may fail the command: the state is written.
    let md5 = md5_hex(&body);
    let digest_key = args
        .target
        .store
        .url()
        .ok()
        .and_then(|url| digest::digest_key(&url, key));
    let digest = match &digest_key {
        Some(_) => Some(
            digest::update_dynamodb_digest(digest_target, &md5)
                .await
                .map_err(|e| format!("{e:#}")),
        ),
        None => None,
    };
    Ok(Locked::Written(Written {
        md5,
        digest_key,
        digest,
        in_server_history,
    }))
}

/// Whether `statelock serve` serves this state too, so the rollback belongs in its history: a
/// file:// store (a statelock directory), or a bucket with history recorded for this key.
async fn server_serves(
    store: &dyn ObjectStore,
    args: &RollbackArgs,
    key: &StateKey,
) -> anyhow::Result<bool> {
    if matches!(args.target.store.url()?, StoreUrl::File(_)) {
        return Ok(true);
    }
    let page = store.list(&history::state_prefix(key), None).await?;
    Ok(!page.objects.is_empty())
}

/// A state written, and what became of its DynamoDB digest.
struct Written {
    md5: String,
    digest_key: Option<String>,
    /// `None` when the store is no S3 bucket, so no digest applies.
    digest: Option<Result<DigestUpdate, String>>,
    /// The version was also recorded in the server's history.
    in_server_history: bool,
}

/// Who holds `lock`'s lock object now, when it is no longer exactly the one we created.
async fn lost_to(locks: &LockClient, lock: &HeldLock) -> anyhow::Result<Option<String>> {
    Ok(match locks.inspect(&lock.key).await? {
        Some(LockState::Held(now))
            if now.info.id == lock.info.id && now.version == lock.version =>
        {
            None
        }
        Some(LockState::Held(now)) => Some(format!("{} (lock ID {})", now.info.who, now.info.id)),
        Some(LockState::Unreadable { reason, .. }) => {
            Some(format!("an unreadable lock object ({reason})"))
        }
        None => Some("nobody: it was removed".to_owned()),
    })
}

/// Reads the version and the current state and plans the new document.
async fn prepare(
    store: &dyn ObjectStore,
    key: &StateKey,
    args: &RollbackArgs,
) -> anyhow::Result<Result<Prepared, Refusal>> {
    let version = match versions::fetch(store, key, &args.to).await {
        Ok(v) => v,
        Err(e) if e.is_missing() => return Ok(Err(Refusal(e.to_string()))),
        Err(e) => return Err(e.into()),
    };
    // An empty object is "no state" (spec §5.1), but still the object the write must replace.
    let current = store.get_if_exists(key.as_str()).await?;
    let current_body = current
        .as_ref()
        .map(|c| &c.body[..])
        .filter(|b| !b.is_empty());
    let plan = match plan_rollback(&version.body, current_body, args.force) {
        Ok(plan) => plan,
        Err(RollbackError::LineageMismatch {
            version: v,
            current: c,
        }) => {
            return Ok(Err(Refusal(format!(
                "version {} has lineage {} but the current state of {key} has lineage {}; \
                 add --force to roll back across lineages (the copy gets the current lineage)",
                args.to,
                lineage_text(v.as_deref()),
                lineage_text(c.as_deref())
            ))));
        }
        Err(e @ RollbackError::Encrypted) => {
            return Ok(Err(Refusal(format!(
                "{e}; `statelock state show {key} {} --raw` gives its bytes for `tofu state push`",
                args.to
            ))));
        }
        Err(e) => anyhow::bail!("cannot roll {key} back to {}: {e}", args.to),
    };
    let changes = current_body.and_then(|c| diff(c, &plan.body).ok());
    Ok(Ok(Prepared {
        version,
        current,
        plan,
        changes,
    }))
}

fn serial_text(serial: Option<u64>) -> String {
    serial.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// The plan, to stdout (stderr with `--json`, so stdout stays one JSON document).
fn show_plan(key: &StateKey, p: &Prepared, args: &RollbackArgs) {
    let current = match &p.current {
        Some(c) if c.body.is_empty() => "none (the state object is empty)".to_owned(),
        Some(_) => format!(
            "serial {}, lineage {}",
            serial_text(p.plan.current_serial),
            lineage_text(p.plan.lineage.as_deref())
        ),
        None => "none (the state object does not exist)".to_owned(),
    };
    let mut text = format!(
        "Roll back {key} to version {} ({}, serial {})\n  current state: {current}\n  new state:     serial {}, lineage {}{}\n",
        p.version.id,
        p.version.source.name(),
        serial_text(p.plan.version_serial),
        p.plan.serial,
        lineage_text(p.plan.lineage.as_deref()),
        if p.plan.lineage_forced {
            " (carried over by --force)"
        } else {
            ""
        },
    );
    if let Some(changes) = &p.changes {
        text.push_str("Changes from the current state:\n");
        for line in super::diff::render(changes).lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    if args.json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// The rollback as JSON: which version, the serials, the lineage and the new body's MD5.
fn summary_json(key: &StateKey, p: &Prepared, md5: &str) -> serde_json::Value {
    json!({
        "key": key.as_str(),
        "rolled_back_to": p.version.id,
        "source": p.version.source,
        "old_serial": p.plan.current_serial,
        "new_serial": p.plan.serial,
        "lineage": p.plan.lineage,
        "md5": md5,
    })
}

/// The written rollback, then what failed after the write (the digest), as warnings.
fn report(key: &StateKey, p: &Prepared, args: &RollbackArgs, w: &Written, lock_released: bool) {
    let md5 = &w.md5;
    let digest = match &w.digest {
        None => "not-applicable",
        Some(Ok(DigestUpdate::Updated)) => "updated",
        Some(Ok(DigestUpdate::Pending)) => "not-updated",
        Some(Err(_)) => "failed",
    };
    if args.json {
        let mut doc = summary_json(key, p, md5);
        doc["dynamodb_digest_key"] = json!(w.digest_key);
        doc["dynamodb_digest"] = json!(digest);
        if let Some(Err(e)) = &w.digest {
            doc["dynamodb_digest_error"] = json!(e);
        }
        doc["lock_released"] = json!(lock_released);
        doc["recorded_in_server_history"] = json!(w.in_server_history);
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
        );
    } else {
        println!(
            "rolled back {key} to {}: serial {} -> {}, lineage {}, MD5 {md5}{}",
            p.version.id,
            serial_text(p.plan.current_serial),
            p.plan.serial,
            lineage_text(p.plan.lineage.as_deref()),
            if w.in_server_history {
                " (recorded in the server history)"
            } else {
                ""
            },
        );
    }
    match (&w.digest_key, &w.digest) {
        (Some(k), Some(Ok(DigestUpdate::Pending))) => eprintln!("{}", digest::pending_note(k, md5)),
        (Some(k), Some(Err(e))) => eprintln!(
            "statelock: warning: the state was written but its DynamoDB digest {k} could not be \
             updated: {e}\n{}",
            digest::pending_note(k, md5)
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use clap::Parser;
    use statelock_store::{
        Capabilities, DeleteMode, ListPage, MemoryStore, ObjectMeta, ObjectVersion, StoreResult,
    };

    use super::*;

    const KEY: &str = "app.tfstate";

    /// What the other client does, once, and when.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Trigger {
        /// Replaces the state just before our write lands: a client that ignores the lock.
        BeforeStateWrite,
        /// Replaces the state (properly) just before we take the lock: a change made while the
        /// operator was reading the plan.
        BeforeLock,
        /// Breaks our lock just after we took it and takes it: a force-unlock and a new lock.
        TakeOverLock,
        /// Fails the release of our lock (deleting the lock object).
        FailRelease,
    }

    /// A memory store with another client acting at one point, and a record of whether our
    /// lock was there when the state was written.
    #[derive(Debug, Default)]
    struct Intruder {
        inner: MemoryStore,
        trigger: Mutex<Option<Trigger>>,
        lock_at_write: Mutex<Option<bool>>,
    }

    impl Intruder {
        fn fire(&self, at: Trigger) -> bool {
            let mut trigger = self.trigger.lock().unwrap();
            if *trigger == Some(at) {
                *trigger = None;
                return true;
            }
            false
        }

        async fn intrude(&self) -> StoreResult<ObjectMeta> {
            let theirs = Bytes::from(doc(9, "intruder"));
            self.inner
                .put(KEY, theirs, PutOptions::new(PutMode::Overwrite))
                .await
        }
    }

    #[async_trait]
    impl ObjectStore for Intruder {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        async fn get(&self, key: &str) -> StoreResult<GetResult> {
            self.inner.get(key).await
        }
        async fn head(&self, key: &str) -> StoreResult<ObjectMeta> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: Bytes,
            options: PutOptions,
        ) -> StoreResult<ObjectMeta> {
            if key == lock_key() && self.fire(Trigger::BeforeLock) {
                self.intrude().await?;
            }
            if key == KEY {
                let lock = self.inner.get_if_exists(&lock_key()).await?;
                let ours =
                    lock.is_some_and(|l| String::from_utf8_lossy(&l.body).contains(OPERATION));
                *self.lock_at_write.lock().unwrap() = Some(ours);
                if self.fire(Trigger::BeforeStateWrite) {
                    self.intrude().await?;
                }
            }
            let written = self.inner.put(key, body, options).await?;
            if key == lock_key() && self.fire(Trigger::TakeOverLock) {
                let theirs = LockInfo::new("OperationTypeApply", "mallory@box", "1.10.0");
                let theirs = Bytes::from(theirs.encode());
                let options = PutOptions::new(PutMode::Overwrite);
                self.inner.put(key, theirs, options).await?;
            }
            Ok(written)
        }
        async fn delete(&self, key: &str, mode: DeleteMode) -> StoreResult<()> {
            if key == lock_key() && self.fire(Trigger::FailRelease) {
                return Err(StoreError::other(
                    "intruder",
                    "delete",
                    key,
                    "connection reset",
                ));
            }
            self.inner.delete(key, mode).await
        }
        async fn list(&self, prefix: &str, continuation: Option<&str>) -> StoreResult<ListPage> {
            self.inner.list(prefix, continuation).await
        }
        async fn list_versions(&self, key: &str) -> StoreResult<Vec<ObjectVersion>> {
            self.inner.list_versions(key).await
        }
        async fn get_version(&self, key: &str, version_id: &str) -> StoreResult<GetResult> {
            self.inner.get_version(key, version_id).await
        }
    }

    fn doc(serial: u64, n: &str) -> String {
        format!(
            r#"{{"version":4,"serial":{serial},"lineage":"L","outputs":{{"n":{{"value":"{n}","type":"string"}}}},"resources":[]}}"#
        )
    }

    fn args(to: &str) -> RollbackArgs {
        args_on(to, "memory://", &[])
    }

    fn args_on(to: &str, store: &str, extra: &[&str]) -> RollbackArgs {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            rollback: RollbackArgs,
        }
        let argv = ["x", KEY, "--to", to, "--yes", "--store", store];
        Cli::try_parse_from(argv.iter().chain(extra))
            .unwrap()
            .rollback
    }

    async fn setup() -> (Arc<Intruder>, String) {
        let store = Arc::new(Intruder::default());
        for (serial, n) in [(1, "one"), (2, "two")] {
            let body = Bytes::from(doc(serial, n));
            let options = PutOptions::new(PutMode::Overwrite);
            store.put(KEY, body, options).await.unwrap();
        }
        *store.lock_at_write.lock().unwrap() = None;
        let versions = store.list_versions(KEY).await.unwrap();
        (store, versions.last().unwrap().version_id.clone())
    }

    fn lock_key() -> String {
        format!("{KEY}{}", statelock_core::LOCK_SUFFIX)
    }

    async fn locked(store: &Intruder) -> bool {
        store.get_if_exists(&lock_key()).await.unwrap().is_some()
    }

    async fn current(store: &Intruder) -> String {
        String::from_utf8(store.get(KEY).await.unwrap().body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_writer_ignoring_the_lock_is_detected_and_the_lock_released() {
        let (store, first) = setup().await;
        *store.trigger.lock().unwrap() = Some(Trigger::BeforeStateWrite);
        let err = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ignored the lock"), "{err}");
        assert_eq!(*store.lock_at_write.lock().unwrap(), Some(true));
        assert_eq!(current(&store).await, doc(9, "intruder"));
        assert!(!locked(&store).await);
    }

    #[tokio::test]
    async fn a_state_changed_after_the_plan_is_refused_and_nothing_written() {
        let (store, first) = setup().await;
        *store.trigger.lock().unwrap() = Some(Trigger::BeforeLock);
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, nothing_or_refused());
        assert_eq!(*store.lock_at_write.lock().unwrap(), None);
        assert_eq!(current(&store).await, doc(9, "intruder"));
        assert!(!locked(&store).await);
    }

    #[tokio::test]
    async fn a_lock_taken_over_before_the_write_is_neither_written_nor_released() {
        let (store, first) = setup().await;
        *store.trigger.lock().unwrap() = Some(Trigger::TakeOverLock);
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, nothing_or_refused());
        assert_eq!(*store.lock_at_write.lock().unwrap(), None);
        assert_eq!(current(&store).await, doc(2, "two"));
        let lock = store.get(&lock_key()).await.unwrap();
        assert!(String::from_utf8_lossy(&lock.body).contains("mallory@box"));
    }

    #[tokio::test]
    async fn a_lock_not_released_after_the_write_is_a_warning_not_a_failure() {
        let (store, first) = setup().await;
        *store.trigger.lock().unwrap() = Some(Trigger::FailRelease);
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let now: serde_json::Value = serde_json::from_str(&current(&store).await).unwrap();
        assert_eq!(now["serial"], 3);
        assert!(locked(&store).await);
    }

    #[tokio::test]
    async fn an_empty_state_object_is_no_state_and_is_replaced_by_compare_and_swap() {
        let (store, first) = setup().await;
        let empty = PutOptions::new(PutMode::Overwrite);
        store.put(KEY, Bytes::new(), empty.clone()).await.unwrap();
        let key = StateKey::parse(KEY).unwrap();
        let shown = versions::fetch(&*store, &key, versions::CURRENT).await;
        assert!(matches!(shown, Err(versions::FetchError::NoState { .. })));
        *store.trigger.lock().unwrap() = Some(Trigger::BeforeStateWrite);
        let err = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ignored the lock"), "{err}");
        store.put(KEY, Bytes::new(), empty).await.unwrap();
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let now: serde_json::Value = serde_json::from_str(&current(&store).await).unwrap();
        assert_eq!(
            (now["serial"].as_u64(), now["lineage"].as_str()),
            (Some(2), Some("L"))
        );
    }

    #[tokio::test]
    async fn the_current_content_is_no_change_unless_forced() {
        let (store, _) = setup().await;
        let newest = store.list_versions(KEY).await.unwrap().remove(0).version_id;
        let code = rollback(store.clone(), "b".into(), &args(&newest))
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(store.list_versions(KEY).await.unwrap().len(), 2);
        let lock_versions = store.list_versions(&lock_key()).await.unwrap();
        assert!(lock_versions.is_empty(), "{lock_versions:?}");

        let mut forced = args(&newest);
        forced.force = true;
        let code = rollback(store.clone(), "b".into(), &forced).await.unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(current(&store).await.contains("\"serial\": 3"));
    }

    #[tokio::test]
    async fn a_statelock_directory_records_the_rollback_in_the_server_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(statelock_store::LocalStore::open(dir.path()).unwrap());
        for serial in [1, 2] {
            let body = Bytes::from(doc(serial, "n"));
            let options = PutOptions::new(PutMode::Overwrite);
            store.put(KEY, body, options).await.unwrap();
        }
        let url = format!("file://{}", dir.path().display());
        let forced = args_on(versions::CURRENT, &url, &["--force"]);
        let code = rollback(store.clone(), "b".into(), &forced).await.unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let key = StateKey::parse(KEY).unwrap();
        let recorded = history::list(&*store, &key).await.unwrap();
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(
            (recorded[0].kind, recorded[0].serial),
            (Kind::Rollback, Some(3))
        );
        let written = store.get(KEY).await.unwrap().body;
        assert_eq!(recorded[0].md5.as_deref(), Some(md5_hex(&written).as_str()));
    }

    #[tokio::test]
    async fn rolls_back_as_the_next_serial() {
        let (store, first) = setup().await;
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let now: serde_json::Value = serde_json::from_str(&current(&store).await).unwrap();
        assert_eq!(
            (
                now["serial"].as_u64(),
                now["outputs"]["n"]["value"].as_str()
            ),
            (Some(3), Some("one"))
        );
        assert_eq!(now["lineage"], "L");
        assert_eq!(*store.lock_at_write.lock().unwrap(), Some(true));
        assert!(!locked(&store).await);
    }
}

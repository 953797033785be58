//! `state rollback KEY --to VERSION`: copies a version forward as the next serial on the same
//! lineage, holding the state's `.tflock` lock, and writes it with compare-and-swap.
//!
//! The rollback itself is the state service's (`StateService::{plan_rollback, rollback}`, the
//! one the server's API uses): plan → show and ask, all without the lock (`--dry-run` stops
//! there) → lock (refused, naming the holder, if someone has it) → re-read the state and refuse
//! if it is no longer the one confirmed → lock still ours → write with compare-and-swap →
//! DynamoDB digest → release the lock, on every path, including Ctrl-C and SIGTERM. This module
//! plans the operator's side: the store check, the prompt, the digest and the report.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use serde_json::json;
use statelock_core::state::{RollbackError as PlanError, StateDiff, diff, lineage_text};
use statelock_core::{LockInfo, StateKey};
use statelock_lock::{LockClient, LockError, user_at_host};
use statelock_state::history::md5_hex;
use statelock_state::{
    LockRelease, PlannedRollback, ROLLBACK_OPERATION, RecordIn, RollbackError, StateRules,
    StateService,
};
use statelock_store::ObjectStore;

use super::KeyArgs;
use super::digest::{self, DigestArgs, DigestTarget, DigestUpdate};
use crate::commands::locks::state_key;
use crate::commands::nothing_or_refused;
use crate::commands::prompt::{Answer, confirm};
use crate::store_url::StoreUrl;

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
    planned: PlannedRollback,
    changes: Option<StateDiff>,
}

impl std::ops::Deref for Prepared {
    type Target = PlannedRollback;
    fn deref(&self) -> &PlannedRollback {
        &self.planned
    }
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
    let url = args.target.store.url()?;
    // Before anything is shown or locked: a table that cannot be reached fails the command
    // while nothing has changed.
    let digest_target = DigestTarget::connect(
        &args.dynamodb,
        &url,
        &key,
        args.target.store.s3.s3_region.clone(),
    )
    .await?;
    let rules = StateRules {
        // Pruning is left to the server's next write, with its own setting.
        history_retention: 0,
        ..StateRules::default()
    };
    let states = StateService::new(store.clone(), LockClient::new(store.clone(), bucket), rules);
    // Planned, shown and confirmed without the lock, so an operator who walks away from the
    // prompt (or interrupts it) blocks nobody; the write below refuses if the state moved.
    let p = match states.plan_rollback(&key, &args.to, args.force).await {
        Ok(planned) => Prepared {
            changes: planned
                .current_body()
                .and_then(|c| diff(c, &planned.plan.body).ok()),
            planned,
        },
        Err(e) => return refusal(&key, args, e).map(refuse),
    };
    if p.no_changes() {
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
    if url.is_remote() {
        // The lock and the compare-and-swap both rest on conditional writes.
        let allow_unsafe = args.target.store.s3.allow_unsafe_store;
        crate::store_check::check_conditional_writes(&*store, allow_unsafe, "roll back").await?;
    }
    // A statelock directory is what `statelock serve` serves; a bucket only when the server
    // has kept history for this key.
    let record_in = match url {
        StoreUrl::File(_) => RecordIn::History,
        _ => RecordIn::HistoryIfKept,
    };
    let digest_key = digest::digest_key(&url, &key);
    let has_digest = digest_key.is_some();
    let update_digest = |body: Bytes| async move {
        // Nothing after the put may fail the command: the state is written.
        match has_digest {
            true => Some(
                digest::update_dynamodb_digest(digest_target.as_ref(), &md5_hex(&body))
                    .await
                    .map_err(|e| format!("{e:#}")),
            ),
            false => None,
        }
    };
    let holder = LockInfo::new(
        ROLLBACK_OPERATION,
        &user_at_host(),
        env!("CARGO_PKG_VERSION"),
    );
    let outcome = states
        .rollback(
            &p,
            holder,
            record_in,
            update_digest,
            crate::signals::shutdown_signal(),
        )
        .await;
    let not_released = match &outcome.release {
        LockRelease::Failed { lock_id, error } => Some(format!(
            "{error}\nRemove it with `statelock locks unlock {key} --id {lock_id}`."
        )),
        _ => None,
    };
    let written = match outcome.result {
        Ok(written) => written,
        Err(e) => {
            if let Some(why) = &not_released {
                eprintln!("statelock: could not release the lock on {key}: {why}");
            }
            return refusal(&key, args, e).map(refuse);
        }
    };
    let written = Written {
        md5: md5_hex(&written.body),
        digest_key,
        digest: written.after_write,
        in_server_history: written.in_server_history,
    };
    // The state is written whatever happens now: report it first, then what failed.
    report(&key, &p, args, &written, not_released.is_none());
    if let Some(why) = not_released {
        eprintln!(
            "statelock: warning: rolled back (serial {} written) but the lock could not be \
             released: {why}",
            p.plan.serial,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What a rollback that did not write tells the operator: a refusal (exit 2) when the
/// situation, not the tool, stopped it; an error otherwise.
fn refusal(key: &StateKey, args: &RollbackArgs, e: RollbackError) -> anyhow::Result<Refusal> {
    Ok(Refusal(match e {
        RollbackError::Version(e) if e.is_missing() => e.to_string(),
        RollbackError::Plan {
            error: PlanError::LineageMismatch { version, current },
            ..
        } => format!(
            "version {} has lineage {} but the current state of {key} has lineage {}; \
             add --force to roll back across lineages (the copy gets the current lineage)",
            args.to,
            lineage_text(version.as_deref()),
            lineage_text(current.as_deref())
        ),
        RollbackError::Plan {
            error: e @ PlanError::Encrypted,
            ..
        } => format!(
            "{e}; `statelock state show {key} {} --raw` gives its bytes for `tofu state push`",
            args.to
        ),
        RollbackError::Lock(e @ (LockError::Held { .. } | LockError::Unreadable { .. })) => {
            e.to_string()
        }
        RollbackError::Moved { .. } => {
            format!("the state {key} changed since you confirmed; run again")
        }
        RollbackError::TakenOver { holder, .. } => {
            format!("your lock on {key} was taken over by {holder}")
        }
        e => return Err(e.into()),
    }))
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

/// A state written, and what became of its DynamoDB digest.
struct Written {
    md5: String,
    digest_key: Option<String>,
    /// `None` when the store is no S3 bucket, so no digest applies.
    digest: Option<Result<DigestUpdate, String>>,
    /// The version was also recorded in the server history.
    in_server_history: bool,
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

    use clap::Parser;
    use statelock_state::history::{self, Kind};
    use statelock_state::versions;
    use statelock_store::{
        Fault, FaultyStore, Hook, MemoryStore, ObjectStoreExt, Op, PutMode, PutOptions, StoreError,
        StoreResult,
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

    /// A memory store with another client acting at one point (scripted on a
    /// [`FaultyStore`]), and a record of whether our lock was there when the state was
    /// written.
    struct Intruder {
        store: Arc<FaultyStore>,
        lock_at_write: Arc<Mutex<Option<bool>>>,
    }

    impl Intruder {
        /// The other client acts at `at`.
        fn arm(&self, at: Trigger) {
            let fault = match at {
                Trigger::BeforeStateWrite => {
                    // Re-scripted with the intrusion added to the observation.
                    self.store.inject_for_exact_key(
                        Op::Put,
                        KEY,
                        Fault::Before(observe_lock(&self.lock_at_write, true)),
                    );
                    return;
                }
                Trigger::BeforeLock => (Op::Put, Fault::Before(Hook::new(intrude))),
                Trigger::TakeOverLock => (Op::Put, Fault::After(Hook::new(take_over))),
                Trigger::FailRelease => (
                    Op::Delete,
                    Fault::Before(Hook::new(|_| async {
                        Err(StoreError::other(
                            "intruder",
                            "delete",
                            KEY,
                            "connection reset",
                        ))
                    })),
                ),
            };
            self.store
                .inject_for_exact_key(fault.0, &lock_key(), fault.1);
        }

        fn lock_at_write(&self) -> Option<bool> {
            *self.lock_at_write.lock().unwrap()
        }
    }

    /// Records whether our lock object is there when the state is written; with `intrude`,
    /// then replaces the state as a client ignoring the lock would.
    fn observe_lock(seen: &Arc<Mutex<Option<bool>>>, intrude_too: bool) -> Hook {
        let seen = seen.clone();
        Hook::new(move |store: Arc<dyn ObjectStore>| {
            let seen = seen.clone();
            async move {
                let lock = store.get_if_exists(&lock_key()).await?;
                let ours = lock
                    .is_some_and(|l| String::from_utf8_lossy(&l.body).contains(ROLLBACK_OPERATION));
                *seen.lock().unwrap() = Some(ours);
                if intrude_too {
                    intrude(store).await?;
                }
                Ok(())
            }
        })
    }

    async fn intrude(store: Arc<dyn ObjectStore>) -> StoreResult<()> {
        let theirs = Bytes::from(doc(9, "intruder"));
        store
            .put(KEY, theirs, PutOptions::new(PutMode::Overwrite))
            .await
            .map(drop)
    }

    async fn take_over(store: Arc<dyn ObjectStore>) -> StoreResult<()> {
        let theirs = LockInfo::new("OperationTypeApply", "mallory@box", "1.10.0");
        let options = PutOptions::new(PutMode::Overwrite);
        store
            .put(&lock_key(), Bytes::from(theirs.encode()), options)
            .await
            .map(drop)
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

    async fn setup() -> (Intruder, String) {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        for (serial, n) in [(1, "one"), (2, "two")] {
            let body = Bytes::from(doc(serial, n));
            let options = PutOptions::new(PutMode::Overwrite);
            store.put(KEY, body, options).await.unwrap();
        }
        let lock_at_write = Arc::new(Mutex::new(None));
        let intruder = Intruder {
            store,
            lock_at_write,
        };
        let versions = intruder.store.list_versions(KEY).await.unwrap();
        (intruder, versions.last().unwrap().version_id.clone())
    }

    fn watch(intruder: &Intruder) {
        intruder.store.inject_for_exact_key(
            Op::Put,
            KEY,
            Fault::Before(observe_lock(&intruder.lock_at_write, false)),
        );
    }

    fn lock_key() -> String {
        format!("{KEY}{}", statelock_core::LOCK_SUFFIX)
    }

    async fn locked(store: &FaultyStore) -> bool {
        store.get_if_exists(&lock_key()).await.unwrap().is_some()
    }

    async fn current(store: &FaultyStore) -> String {
        String::from_utf8(store.get(KEY).await.unwrap().body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_writer_ignoring_the_lock_is_detected_and_the_lock_released() {
        let (intruder, first) = setup().await;
        intruder.arm(Trigger::BeforeStateWrite);
        watch(&intruder);
        let store = intruder.store.clone();
        let err = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ignored the lock"), "{err}");
        assert_eq!(intruder.lock_at_write(), Some(true));
        assert_eq!(current(&store).await, doc(9, "intruder"));
        assert!(!locked(&store).await);
    }

    #[tokio::test]
    async fn a_state_changed_after_the_plan_is_refused_and_nothing_written() {
        let (intruder, first) = setup().await;
        intruder.arm(Trigger::BeforeLock);
        watch(&intruder);
        let store = intruder.store.clone();
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, nothing_or_refused());
        assert_eq!(intruder.lock_at_write(), None);
        assert_eq!(current(&store).await, doc(9, "intruder"));
        assert!(!locked(&store).await);
    }

    #[tokio::test]
    async fn a_lock_taken_over_before_the_write_is_neither_written_nor_released() {
        let (intruder, first) = setup().await;
        intruder.arm(Trigger::TakeOverLock);
        watch(&intruder);
        let store = intruder.store.clone();
        let code = rollback(store.clone(), "b".into(), &args(&first))
            .await
            .unwrap();
        assert_eq!(code, nothing_or_refused());
        assert_eq!(intruder.lock_at_write(), None);
        assert_eq!(current(&store).await, doc(2, "two"));
        let lock = store.get(&lock_key()).await.unwrap();
        assert!(String::from_utf8_lossy(&lock.body).contains("mallory@box"));
    }

    #[tokio::test]
    async fn a_lock_not_released_after_the_write_is_a_warning_not_a_failure() {
        let (intruder, first) = setup().await;
        intruder.arm(Trigger::FailRelease);
        watch(&intruder);
        let store = intruder.store.clone();
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
        let (intruder, first) = setup().await;
        let store = intruder.store.clone();
        let empty = PutOptions::new(PutMode::Overwrite);
        store.put(KEY, Bytes::new(), empty.clone()).await.unwrap();
        let key = StateKey::parse(KEY).unwrap();
        let shown = versions::fetch(&*store, &key, versions::CURRENT).await;
        assert!(matches!(shown, Err(versions::FetchError::NoState { .. })));
        intruder.arm(Trigger::BeforeStateWrite);
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
        let (intruder, _) = setup().await;
        let store = intruder.store.clone();
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
        let (intruder, first) = setup().await;
        watch(&intruder);
        let store = intruder.store.clone();
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
        assert_eq!(intruder.lock_at_write(), Some(true));
        assert!(!locked(&store).await);
    }
}

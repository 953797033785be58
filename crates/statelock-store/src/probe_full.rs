//! The full store probe behind `statelock probe`: the start-up checks of
//! [`probe_conditional_writes`] plus races, the delete-marker rule and the checksum headers
//! Terraform and OpenTofu send. A store can honour a single conditional request and still let
//! two racing creators both win, so only racing proves mutual exclusion.
//!
//! Everything is written under [`PROBE_PREFIX`] and removed afterwards.

use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::error::StoreError;
use crate::port::{DeleteMode, ObjectStore, PutMode, PutOptions, Version};
use crate::probe::{
    Need, PROBE_PREFIX, ProbeCheck, ProbeReport, probe_conditional_writes, refusal,
};
use crate::version_token::new_version_token;

/// How hard the races push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Creators racing for one key in each round.
    pub racers: usize,
    /// Rounds of the creators' race.
    pub rounds: usize,
    /// Workers incrementing one counter by compare-and-swap.
    pub cas_workers: usize,
    /// Increments each worker makes.
    pub cas_increments: usize,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            racers: 20,
            rounds: 5,
            cas_workers: 4,
            cas_increments: 5,
        }
    }
}

/// A compare-and-swap worker gives up after this many refusals in a row, so a store that
/// refuses every swap ends the probe instead of spinning.
const CAS_RETRIES: usize = 500;

/// Runs every check; `progress` gets one line per racing round. Fails only when the store
/// cannot be used at all.
pub async fn probe_store(
    store: &Arc<dyn ObjectStore>,
    options: &ProbeOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ProbeReport, StoreError> {
    let mut report = probe_conditional_writes(&**store).await?;
    let base = format!("{PROBE_PREFIX}{}/", new_version_token());
    report.checks.push(if_match_missing(&**store, &base).await);
    report
        .checks
        .push(delete_marker_rule(&**store, &base).await);
    report.checks.push(sha256_checksum(&report));
    report.checks.push(content_md5(&**store, &base).await);
    report
        .checks
        .push(creators_race(store, &base, options, progress).await);
    report
        .checks
        .push(cas_race(store, &base, options, progress).await);
    cleanup(&**store, &base).await;
    report.quirks = store.quirks();
    Ok(report)
}

async fn if_match_missing(store: &dyn ObjectStore, base: &str) -> ProbeCheck {
    let key = format!("{base}missing");
    let stale = Version::new("\"00000000000000000000000000000000\"");
    let put = store
        .put(
            &key,
            Bytes::from_static(b"x"),
            PutOptions::new(PutMode::Update(stale)),
        )
        .await;
    ProbeCheck {
        name: "compare-and-swap (If-Match) on a missing key",
        passed: matches!(put, Err(StoreError::Precondition { .. })),
        detail: refusal(
            &put,
            "the store creates the object: a state deleted meanwhile comes back (the stale-write \
             guard still checks it)",
        ),
        // Lockfile clients never send If-Match; statelock's state writes do, and a created
        // object there only adds a stray state, which the stale-write guard catches.
        needed_by: Need::Neither,
    }
}

/// Versioned buckets keep a delete marker where a lock was; a store that treats the marker
/// as "exists" would leave every released lock stuck for good.
async fn delete_marker_rule(store: &dyn ObjectStore, base: &str) -> ProbeCheck {
    let key = format!("{base}delete-marker.tflock");
    let create = || PutOptions::json(PutMode::Create);
    let steps = async {
        store.put(&key, Bytes::from_static(b"1"), create()).await?;
        store.delete(&key, DeleteMode::Unconditional).await?;
        store.put(&key, Bytes::from_static(b"2"), create()).await
    };
    let result = steps.await;
    ProbeCheck {
        name: "create-if-absent of a deleted lock (delete-marker rule)",
        passed: result.is_ok(),
        detail: match &result {
            Ok(_) => "create, delete, create: all accepted, as they must be".to_owned(),
            Err(e) => format!("failed: {e}; every released lock would stay stuck"),
        },
        needed_by: Need::Lockfile,
    }
}

/// Every put of the S3 adapter carries `x-amz-checksum-sha256`, so the first create of the
/// start-up checks already showed whether the store accepts it.
fn sha256_checksum(report: &ProbeReport) -> ProbeCheck {
    ProbeCheck {
        name: "puts with x-amz-checksum-sha256 (Terraform >=1.10, OpenTofu)",
        passed: true,
        detail: format!(
            "accepted: every put of this probe to {} carried it (S3 stores only)",
            report.store
        ),
        needed_by: Need::Lockfile,
    }
}

async fn content_md5(store: &dyn ObjectStore, base: &str) -> ProbeCheck {
    let key = format!("{base}content-md5");
    let put = store
        .put(
            &key,
            Bytes::from_static(b"{\"version\":4}"),
            PutOptions::json(PutMode::Overwrite).with_content_md5(),
        )
        .await;
    ProbeCheck {
        name: "puts with Content-MD5 (Terraform <1.6 state writes)",
        passed: put.is_ok(),
        detail: match &put {
            Ok(_) => "accepted".to_owned(),
            Err(e) => format!("failed: {e}; Terraform before 1.6 cannot write states here"),
        },
        // Only state writes of old clients carry it; lockfile clients never do.
        needed_by: Need::Neither,
    }
}

async fn creators_race(
    store: &Arc<dyn ObjectStore>,
    base: &str,
    options: &ProbeOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> ProbeCheck {
    let mut bad_rounds = Vec::new();
    for round in 1..=options.rounds {
        let key = format!("{base}race-{round}.tflock");
        let mut racers = JoinSet::new();
        for racer in 0..options.racers {
            let (store, key) = (Arc::clone(store), key.clone());
            racers.spawn(async move {
                let body = Bytes::from(format!("racer-{racer}"));
                let put = store
                    .put(&key, body.clone(), PutOptions::json(PutMode::Create))
                    .await;
                (body, put)
            });
        }
        let mut winners = Vec::new();
        let mut errors = 0;
        while let Some(joined) = racers.join_next().await {
            match joined {
                Ok((body, Ok(_))) => winners.push(body),
                Ok((_, Err(StoreError::AlreadyExists { .. }))) => {}
                Ok((_, Err(_))) | Err(_) => errors += 1,
            }
        }
        let kept = store.get(&key).await.map(|found| found.body);
        let kept_is_winner = matches!((&kept, winners.as_slice()), (Ok(body), [w]) if body == w);
        progress(&format!(
            "probe: creators' race round {round}/{}: {} of {} racers won, {errors} errors",
            options.rounds,
            winners.len(),
            options.racers
        ));
        if !kept_is_winner {
            bad_rounds.push(format!("round {round}: {} winners", winners.len()));
        }
    }
    ProbeCheck {
        name: "creators racing for one lock",
        passed: bad_rounds.is_empty(),
        detail: if bad_rounds.is_empty() {
            format!(
                "{} rounds of {} racers: one winner each, its body kept",
                options.rounds, options.racers
            )
        } else {
            format!(
                "{}: more than one client can hold a lock at once",
                bad_rounds.join("; ")
            )
        },
        needed_by: Need::Lockfile,
    }
}

async fn cas_race(
    store: &Arc<dyn ObjectStore>,
    base: &str,
    options: &ProbeOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> ProbeCheck {
    let name = "racing compare-and-swap increments of one counter";
    let key = format!("{base}counter");
    if let Err(e) = store
        .put(
            &key,
            Bytes::from_static(b"0"),
            PutOptions::new(PutMode::Overwrite),
        )
        .await
    {
        return failed(name, format!("could not write the counter: {e}"));
    }
    let mut workers = JoinSet::new();
    for _ in 0..options.cas_workers {
        let (store, key, increments) = (Arc::clone(store), key.clone(), options.cas_increments);
        workers.spawn(async move { increment(&*store, &key, increments).await });
    }
    let mut acknowledged = 0;
    let mut failed_answers = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(tally)) => {
                acknowledged += tally.acknowledged;
                failed_answers.extend(tally.failed_answers);
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let expected = options.cas_workers * options.cas_increments;
    let stored: Option<usize> = store.get(&key).await.ok().and_then(|found| {
        String::from_utf8_lossy(&found.body)
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
    });
    progress(&format!(
        "probe: compare-and-swap race: {acknowledged} of {expected} increments acknowledged, {} answers failed and were retried",
        failed_answers.len()
    ));
    let mut detail = format!(
        "{} workers x {} increments: {acknowledged} acknowledged, counter {}",
        options.cas_workers,
        options.cas_increments,
        stored.map_or("unreadable".to_owned(), |n| n.to_string()),
    );
    if !failed_answers.is_empty() {
        // A failed answer under contention may or may not have been applied; the retry
        // after it may then count twice, which loses nothing. Only a counter below the
        // acknowledged increments is a lost update.
        detail.push_str(&format!(
            "; {} answers failed under contention and were retried, {} of them had been \
             applied (first: {})",
            failed_answers.len(),
            stored.map_or(0, |n| n.saturating_sub(expected)),
            failed_answers[0]
        ));
    }
    if !errors.is_empty() {
        detail.push_str(&format!("; errors: {}", errors.join("; ")));
    }
    // Each failed answer may have been applied before its retry, so the counter may exceed
    // the acknowledged increments by at most that many; below them an update was lost.
    let passed = errors.is_empty()
        && acknowledged == expected
        && stored.is_some_and(|n| (expected..=expected + failed_answers.len()).contains(&n));
    ProbeCheck {
        name,
        passed,
        detail: if passed {
            detail
        } else {
            format!("{detail}: concurrent state writes through statelock could be lost")
        },
        // statelock serve's state writes rely on it; lockfile clients do not.
        needed_by: Need::Serve,
    }
}

/// One compare-and-swap worker's count.
struct Tally {
    /// Swaps the store acknowledged.
    acknowledged: usize,
    /// Answers that were neither success nor refusal (a 5xx, a lost reply), each retried.
    failed_answers: Vec<String>,
}

/// A worker gives up after this many failed answers, so a store that fails every swap ends
/// the probe.
const FAILED_ANSWERS: usize = 20;

/// Adds one `increments` times by read, then swap-if-unchanged; returns the swaps the store
/// acknowledged.
///
/// Each write carries a token of its own after the number, as every real compare-and-swap
/// body of statelock's is unique: an answer lost or garbled under contention (Ceph answers
/// some conditional writes with a 5xx) is settled by comparing the stored bytes with ours,
/// which could not tell two writers' identical bodies apart.
async fn increment(store: &dyn ObjectStore, key: &str, increments: usize) -> Result<Tally, String> {
    let mut tally = Tally {
        acknowledged: 0,
        failed_answers: Vec::new(),
    };
    for _ in 0..increments {
        let mut refusals = 0;
        loop {
            let found = store.get(key).await.map_err(|e| e.to_string())?;
            let n: u64 = String::from_utf8_lossy(&found.body)
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| "the counter is not a number".to_owned())?;
            let next = Bytes::from(format!("{} {}", n + 1, new_version_token()));
            match store
                .put(
                    key,
                    next,
                    PutOptions::new(PutMode::Update(found.meta.version)),
                )
                .await
            {
                Ok(_) => break,
                Err(StoreError::Precondition { .. }) if refusals < CAS_RETRIES => refusals += 1,
                Err(e @ StoreError::Other { .. })
                    if tally.failed_answers.len() < FAILED_ANSWERS =>
                {
                    tally.failed_answers.push(e.to_string());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        tally.acknowledged += 1;
    }
    Ok(tally)
}

async fn cleanup(store: &dyn ObjectStore, base: &str) {
    let listed = match crate::port::ObjectStoreExt::list_all(store, base).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(base, error = %e, "could not list the probe objects to remove them");
            return;
        }
    };
    for meta in listed {
        if let Err(e) = store.delete(&meta.key, DeleteMode::Unconditional).await {
            tracing::warn!(key = meta.key, error = %e, "could not remove a probe object");
        }
    }
}

fn failed(name: &'static str, detail: String) -> ProbeCheck {
    ProbeCheck {
        name,
        passed: false,
        detail,
        needed_by: Need::Serve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use crate::port::ObjectStoreExt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_correct_store_passes_every_check_and_is_left_clean() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let lines = std::sync::Mutex::new(Vec::new());
        let options = ProbeOptions {
            racers: 8,
            rounds: 3,
            ..ProbeOptions::default()
        };
        let report = probe_store(&store, &options, &|l: &str| {
            lines.lock().unwrap().push(l.to_owned())
        })
        .await
        .unwrap();
        assert!(report.failures().next().is_none(), "{report}");
        assert!(report.lockfile_is_safe() && report.serve_can_run());
        assert_eq!(report.checks.len(), 11, "{report}");
        assert_eq!(lines.lock().unwrap().len(), 4);
        assert!(store.list_all(PROBE_PREFIX).await.unwrap().is_empty());
    }
}

//! Checks, on a scratch key, that a store really honours the conditional writes locking
//! depends on. An S3-compatible server that ignores `If-None-Match: *` accepts every lock
//! request, so locks there would protect nothing; that must be found before anyone relies
//! on it, not after two applies have run at once.
//!
//! The probe writes only under [`PROBE_PREFIX`] and removes what it wrote.

use std::fmt;

use bytes::Bytes;

use crate::error::StoreError;
use crate::port::{DeleteMode, ObjectStore, Observation, PutMode, PutOptions, Quirk, Version};
use crate::version_token::new_version_token;

/// Where probe objects live, apart from any state.
pub const PROBE_PREFIX: &str = ".statelock/probe/";

/// Who relies on a probed behaviour, so that a failure is judged for each use of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Terraform's and OpenTofu's own `use_lockfile` locking relies on it, and so does
    /// `statelock serve`, whose locks are the same objects.
    Lockfile,
    /// Only `statelock serve` relies on it: its state writes are compare-and-swaps.
    Serve,
    /// Nothing breaks without it; the detail says what degrades.
    Neither,
}

/// One probed behaviour and what the store did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeCheck {
    /// What was done, e.g. "second create-if-absent (If-None-Match: *) of an existing key".
    pub name: &'static str,
    /// Whether the store behaved as locking needs.
    pub passed: bool,
    /// What the store did, and on a failure what follows for the user.
    pub detail: String,
    /// Who relies on this behaviour.
    pub needed_by: Need,
}

impl ProbeCheck {
    /// Whether some use of the store is unsafe without this behaviour.
    pub fn essential(&self) -> bool {
        self.needed_by != Need::Neither
    }
}

/// The outcome of [`probe_conditional_writes`] or [`crate::probe_store`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub store: String,
    pub key: String,
    pub checks: Vec<ProbeCheck>,
    /// The deviations the adapter met and now works around (e.g. a 501 to conditional DELETE).
    pub quirks: Vec<Quirk>,
}

impl ProbeReport {
    /// Whether Terraform's and OpenTofu's own `use_lockfile` locks exclude each other here.
    pub fn lockfile_is_safe(&self) -> bool {
        self.failed_for(Need::Lockfile).next().is_none()
    }

    /// Whether `statelock serve` can run here: lockfile locking is safe and state writes can be
    /// compare-and-swaps. Lock releases always can, conditionally or by the fallback.
    pub fn serve_can_run(&self) -> bool {
        self.lockfile_is_safe() && self.failed_for(Need::Serve).next().is_none()
    }

    fn failed_for(&self, need: Need) -> impl Iterator<Item = &ProbeCheck> {
        self.failures().filter(move |c| c.needed_by == need)
    }

    /// "Terraform/OpenTofu use_lockfile locking: safe|UNSAFE, because ...", naming what the
    /// store did in each failed check it relies on.
    pub fn lockfile_verdict(&self) -> String {
        let needed = self.count(&[Need::Lockfile]);
        let failed: Vec<String> = self.failed_for(Need::Lockfile).map(said).collect();
        if failed.is_empty() {
            format!(
                "Terraform/OpenTofu use_lockfile locking: safe, because all {needed} checks it relies on passed"
            )
        } else {
            format!(
                "Terraform/OpenTofu use_lockfile locking: UNSAFE, because {}",
                failed.join("; ")
            )
        }
    }

    /// "statelock serve: can run|cannot run, because ...", with the quirks it works around.
    pub fn serve_verdict(&self) -> String {
        let needed = self.count(&[Need::Lockfile, Need::Serve]);
        let failed: Vec<String> = self
            .failures()
            .filter(|c| c.essential())
            .map(said)
            .collect();
        if failed.is_empty() {
            let handled = if self.quirks.is_empty() {
                String::new()
            } else {
                let quirks: Vec<String> = self.quirks.iter().map(ToString::to_string).collect();
                format!("; handled: {}", quirks.join("; "))
            };
            format!(
                "statelock serve: can run, because all {needed} checks it relies on passed{handled}"
            )
        } else {
            format!("statelock serve: cannot run, because {}", failed.join("; "))
        }
    }

    fn count(&self, needs: &[Need]) -> usize {
        self.checks
            .iter()
            .filter(|c| needs.contains(&c.needed_by))
            .count()
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ProbeCheck> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// "<check>: <what the store did>", for a verdict.
fn said(check: &ProbeCheck) -> String {
    format!("{}: {}", check.name, check.detail)
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conditional-write probe of {} on {}",
            self.store, self.key
        )?;
        for c in &self.checks {
            let mark = match (c.passed, c.essential()) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            writeln!(f, "  {mark} {}: {}", c.name, c.detail)?;
        }
        for q in &self.quirks {
            writeln!(f, "  handled: {q}")?;
        }
        Ok(())
    }
}

/// What the store did with a request that it must refuse with a 412 (a condition that does
/// not hold), in words: the refusal, an acceptance (the condition was ignored), or another
/// failure as the store put it.
pub(crate) fn refusal<T>(result: &Result<T, StoreError>, ignored: &str) -> String {
    match result {
        Err(StoreError::AlreadyExists { .. } | StoreError::Precondition { .. }) => {
            "refused with 412 Precondition Failed, as it must be".to_owned()
        }
        Ok(_) => format!("accepted, so {ignored}"),
        Err(StoreError::NotImplemented { .. }) => {
            "refused as not implemented (501 Not Implemented)".to_owned()
        }
        Err(e) => format!("failed: {e}"),
    }
}

/// Runs the probe on a fresh scratch key. Fails only when the store cannot be used at all
/// (the first plain write or read fails); a store that merely misbehaves gives a report with
/// failed checks. What it finds that the adapter cannot see for itself (a conditional delete
/// that is ignored) is handed to the store with [`ObjectStore::observed`].
pub async fn probe_conditional_writes(store: &dyn ObjectStore) -> Result<ProbeReport, StoreError> {
    let key = format!("{PROBE_PREFIX}{}", new_version_token());
    let mut checks = Vec::new();
    let create = || PutOptions::new(PutMode::Create);

    let first = store
        .put(&key, Bytes::from_static(b"first"), create())
        .await?;
    let second = store
        .put(&key, Bytes::from_static(b"second"), create())
        .await;
    checks.push(ProbeCheck {
        name: "second create-if-absent (If-None-Match: *) of an existing key",
        passed: matches!(second, Err(StoreError::AlreadyExists { .. })),
        detail: refusal(
            &second,
            "the store ignores If-None-Match: two clients can both take the same lock",
        ),
        needed_by: Need::Lockfile,
    });
    let stored = store.get(&key).await?;
    checks.push(ProbeCheck {
        name: "the body after the second create",
        passed: stored.body == "first",
        detail: if stored.body == "first" {
            "still the first create's, as it must be".to_owned()
        } else {
            format!(
                "{:?} replaced the first create's: a second locker overwrites the holder's record",
                String::from_utf8_lossy(&stored.body)
            )
        },
        needed_by: Need::Lockfile,
    });

    let current = store.head(&key).await?.version;
    let quirks_before = store.quirks();
    let swap = store
        .put(
            &key,
            Bytes::from_static(b"swapped"),
            PutOptions::new(PutMode::Update(current.clone())),
        )
        .await;
    let swapped_version = swap.as_ref().ok().map(|m| m.version.clone());
    let unquoted = !quirks_before.contains(&Quirk::IfMatchUnquoted)
        && store.quirks().contains(&Quirk::IfMatchUnquoted);
    checks.push(ProbeCheck {
        name: "compare-and-swap (If-Match) with the current ETag",
        passed: swap.is_ok(),
        detail: match &swap {
            Ok(_) if unquoted => format!(
                "refused the ETag {current} it had just returned; accepted it unquoted, which \
                 statelock sends from now on"
            ),
            Ok(_) => "accepted, as it must be".to_owned(),
            Err(StoreError::Precondition { .. }) => format!(
                "refused with 412 although the object is at {current}, quoted and unquoted: \
                 every state write through statelock would fail"
            ),
            Err(e) => format!("failed: {e}"),
        },
        needed_by: Need::Serve,
    });

    // After the swap with the current ETag, so that a store which only takes ETags unquoted
    // has taught the adapter to send them that way: the stale check must refuse the form
    // that is really sent from now on, or it proves nothing.
    let stale = Version::new("\"00000000000000000000000000000000\"");
    let swap = store
        .put(
            &key,
            Bytes::from_static(b"stale"),
            PutOptions::new(PutMode::Update(stale)),
        )
        .await;
    checks.push(ProbeCheck {
        name: "compare-and-swap (If-Match) with a stale ETag",
        passed: matches!(swap, Err(StoreError::Precondition { .. })),
        detail: refusal(
            &swap,
            "the store ignores If-Match: two servers writing one state would overwrite each other",
        ),
        needed_by: Need::Serve,
    });
    let quirks_before_delete = store.quirks();
    let changed = store
        .delete(&key, DeleteMode::IfVersion(first.version.clone()))
        .await;
    let name = "conditional delete (If-Match) with a stale ETag";
    let fallback = "lock releases fall back to reading the lock, comparing its ID and a plain \
                    delete, as Terraform's own releases do";
    let conditional_delete = if swapped_version.is_none() || swapped_version == Some(first.version)
    {
        ProbeCheck {
            name,
            passed: false,
            detail: "not checked: the compare-and-swap did not produce a new version".to_owned(),
            needed_by: Need::Neither,
        }
    } else {
        let known: Vec<Quirk> = quirks_before_delete
            .iter()
            .copied()
            .filter(|q| {
                matches!(
                    q,
                    Quirk::ConditionalDeleteNotImplemented | Quirk::ConditionalDeleteIgnored
                )
            })
            .collect();
        let detail = match &changed {
            Err(StoreError::NotImplemented { .. }) if !known.is_empty() => format!(
                "not sent: this store has already shown that {}",
                known
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Err(StoreError::Precondition { .. }) => {
                "refused with 412 Precondition Failed, as it must be: lock releases are \
                 conditional"
                    .to_owned()
            }
            Ok(()) => {
                store.observed(Observation::ConditionalDeleteIgnored);
                format!(
                    "accepted: the object was removed although its ETag differed, so the store ignores If-Match on DELETE; {fallback}"
                )
            }
            Err(StoreError::NotImplemented { .. })
                if store
                    .quirks()
                    .contains(&Quirk::ConditionalDeleteNotImplemented) =>
            {
                format!("refused as not implemented (501 Not Implemented); {fallback}")
            }
            Err(StoreError::NotImplemented { .. }) => {
                format!("not available: the store is set up without conditional delete; {fallback}")
            }
            Err(e) => format!("failed: {e}"),
        };
        ProbeCheck {
            name,
            passed: matches!(changed, Err(StoreError::Precondition { .. })),
            detail,
            // Without it, releasing a lock falls back to read-compare-delete, which says so.
            needed_by: Need::Neither,
        }
    };
    checks.push(conditional_delete);

    let cleanup = store.delete(&key, DeleteMode::Unconditional).await;
    if let Err(e) = cleanup {
        tracing::warn!(key, error = %e, "could not remove the probe object");
    }
    Ok(ProbeReport {
        store: store.describe(),
        key,
        checks,
        quirks: store.quirks(),
    })
}

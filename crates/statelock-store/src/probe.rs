//! Checks, on a scratch key, that a store really honours the conditional writes locking
//! depends on. An S3-compatible server that ignores `If-None-Match: *` accepts every lock
//! request, so locks there would protect nothing; that must be found before anyone relies
//! on it, not after two applies have run at once.
//!
//! The probe writes only under [`PROBE_PREFIX`] and removes what it wrote.

use std::fmt;

use bytes::Bytes;

use crate::error::StoreError;
use crate::port::{DeleteMode, ObjectStore, PutMode, PutOptions, Version};
use crate::version_token::new_version_token;

/// Where probe objects live, apart from any state.
pub const PROBE_PREFIX: &str = ".statelock/probe/";

/// One probed behaviour and what the store did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeCheck {
    /// What was checked, e.g. "second create-if-absent (If-None-Match: *) is refused".
    pub name: &'static str,
    /// Whether the store behaved as locking needs.
    pub passed: bool,
    /// What the store answered.
    pub detail: String,
    /// Whether locking is unsafe without this behaviour (others only degrade gracefully).
    pub essential: bool,
}

/// The outcome of [`probe_conditional_writes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub store: String,
    pub key: String,
    pub checks: Vec<ProbeCheck>,
}

impl ProbeReport {
    /// Whether every essential check passed: locks on this store exclude each other.
    pub fn locking_is_safe(&self) -> bool {
        self.checks.iter().all(|c| c.passed || !c.essential)
    }

    /// One line for people and logs: "safe for Terraform/OpenTofu lockfile locking: yes|no,
    /// because ...", naming the essential checks that failed.
    pub fn verdict(&self) -> String {
        let essential: Vec<&str> = self
            .failures()
            .filter(|c| c.essential)
            .map(|c| c.name)
            .collect();
        if essential.is_empty() {
            let warnings = self.failures().count();
            let rest = if warnings == 0 {
                String::new()
            } else {
                format!(" ({warnings} non-essential checks failed)")
            };
            format!(
                "safe for Terraform/OpenTofu lockfile locking: yes, because all {} essential checks passed{rest}",
                self.checks.iter().filter(|c| c.essential).count()
            )
        } else {
            format!(
                "safe for Terraform/OpenTofu lockfile locking: no, because these checks failed: {}",
                essential.join("; ")
            )
        }
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ProbeCheck> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conditional-write probe of {} on {}",
            self.store, self.key
        )?;
        for c in &self.checks {
            let mark = match (c.passed, c.essential) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            writeln!(f, "  {mark} {}: {}", c.name, c.detail)?;
        }
        Ok(())
    }
}

fn outcome<T: fmt::Debug>(result: &Result<T, StoreError>) -> String {
    match result {
        Ok(_) => "accepted".to_owned(),
        Err(e) => format!("refused: {e}"),
    }
}

/// Runs the probe on a fresh scratch key. Fails only when the store cannot be used at all
/// (the first plain write or read fails); a store that merely misbehaves gives a report with
/// failed checks.
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
        name: "a second create-if-absent (If-None-Match: *) is refused",
        passed: matches!(second, Err(StoreError::AlreadyExists { .. })),
        detail: outcome(&second),
        essential: true,
    });
    let stored = store.get(&key).await?;
    checks.push(ProbeCheck {
        name: "the first create's body is kept",
        passed: stored.body == "first",
        detail: format!("stored body {:?}", String::from_utf8_lossy(&stored.body)),
        essential: true,
    });

    let stale = Version::new("\"00000000000000000000000000000000\"");
    let swap = store
        .put(
            &key,
            Bytes::from_static(b"stale"),
            PutOptions::new(PutMode::Update(stale)),
        )
        .await;
    checks.push(ProbeCheck {
        name: "a compare-and-swap (If-Match) on a stale version is refused",
        passed: matches!(swap, Err(StoreError::Precondition { .. })),
        detail: outcome(&swap),
        essential: true,
    });
    let current = store.head(&key).await?.version;
    let swap = store
        .put(
            &key,
            Bytes::from_static(b"swapped"),
            PutOptions::new(PutMode::Update(current)),
        )
        .await;
    let swapped_version = swap.as_ref().ok().map(|m| m.version.clone());
    checks.push(ProbeCheck {
        name: "a compare-and-swap on the current version is accepted",
        passed: swap.is_ok(),
        detail: outcome(&swap),
        essential: true,
    });

    let changed = store
        .delete(&key, DeleteMode::IfVersion(first.version.clone()))
        .await;
    let conditional_delete = if swapped_version.is_some() && swapped_version != Some(first.version)
    {
        ProbeCheck {
            name: "a conditional delete (If-Match) on a stale version is refused",
            passed: matches!(changed, Err(StoreError::Precondition { .. })),
            detail: outcome(&changed),
            // Without it, releasing a lock falls back to read-compare-delete, which says so.
            essential: false,
        }
    } else {
        ProbeCheck {
            name: "a conditional delete (If-Match) on a stale version is refused",
            passed: false,
            detail: "not checked: the compare-and-swap did not produce a new version".to_owned(),
            essential: false,
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
    })
}

//! The start-up check of a remote store, shared by `serve` and `state rollback`: the
//! conditional-write probe, its quirks logged, and a refusal that names what failed.

use anyhow::Context;

/// Refuses to `action` (`serve`, `roll back`) on a store where statelock's locks or state
/// writes would protect nothing, unless the operator insists (`--allow-unsafe-store`).
/// Returns whether the store passed. What the check learns (a conditional delete that is
/// not implemented or ignored, an ETag that must go unquoted) stays with `store`, so the
/// server works around it from its first request.
pub async fn check_conditional_writes(
    store: &dyn statelock_store::ObjectStore,
    allow_unsafe: bool,
    action: &str,
) -> anyhow::Result<bool> {
    let report = probe_with_retries(store)
        .await
        .context("the conditional-write check of the store failed")?;
    for check in report.failures() {
        tracing::warn!(check = check.name, answer = %check.detail, "store probe failed a check");
    }
    for quirk in &report.quirks {
        tracing::warn!(store = %store.describe(), "store quirk handled: {quirk}");
    }
    if report.serve_can_run() {
        tracing::info!(store = %store.describe(), "store honours conditional writes");
        return Ok(true);
    }
    let failed: Vec<String> = report
        .failures()
        .filter(|c| c.essential())
        .map(|c| format!("  - {}: {}", c.name, c.detail))
        .collect();
    if allow_unsafe {
        tracing::error!(
            store = %store.describe(),
            failed = %failed.join(" | "),
            "GOING ON ANYWAY (--allow-unsafe-store): locks may not exclude each other and \
             concurrent writers can lose state"
        );
        return Ok(false);
    }
    anyhow::bail!(
        "refusing to {action}: {}\n{}\n{}\n\n{report}Use a store that honours If-None-Match and \
         If-Match (`statelock probe` explains each check), or pass --allow-unsafe-store to \
         {action} anyway.",
        store.describe(),
        report.serve_verdict(),
        report.lockfile_verdict()
    )
}

/// Attempts of the probe when the store answers with an error of its own (a 5xx, a dropped
/// connection), which says nothing about its conditional writes: a store that is busy for a
/// moment at start-up must not stop the server.
const PROBE_ATTEMPTS: u32 = 3;

async fn probe_with_retries(
    store: &dyn statelock_store::ObjectStore,
) -> Result<statelock_store::ProbeReport, statelock_store::StoreError> {
    let mut attempt = 1;
    loop {
        match statelock_store::probe_conditional_writes(store).await {
            Err(e @ statelock_store::StoreError::Other { .. }) if attempt < PROBE_ATTEMPTS => {
                tracing::warn!(store = %store.describe(), error = %e, attempt, "the store failed during the conditional-write check; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

//! Audit events in the store: one object per event under `.statelock/audit/<date>/`, created
//! with create-if-absent under a name no other replica can pick, so replicas never contend
//! and a listing of the prefix, sorted by name, is the trail in time order.

use bytes::Bytes;
use statelock_store::{ObjectStore, PutMode, PutOptions};

use super::AuditEvent;

/// Where audit objects live; inside `.statelock/`, which no state key may use.
pub const AUDIT_PREFIX: &str = ".statelock/audit/";

pub(super) async fn put(store: &dyn ObjectStore, event: &AuditEvent) {
    let key = object_key(&event.time);
    let body = Bytes::from(serde_json::to_vec(event).expect("audit events serialise"));
    if let Err(e) = store
        .put(&key, body, PutOptions::json(PutMode::Create))
        .await
    {
        tracing::error!(%key, error = %statelock_store::error_chain(&e), "cannot store the audit event");
    }
}

/// `.statelock/audit/2026-01-02/20260102T030405.123456789Z-<8 random hex>.json`.
fn object_key(time: &str) -> String {
    let date = time.get(..10).unwrap_or("unknown");
    let compact: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
    let mut random = [0u8; 4];
    // A failing OS random source is near impossible; the time alone still orders the trail.
    let _ = getrandom::fill(&mut random);
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{AUDIT_PREFIX}{date}/{compact}-{suffix}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_differ() {
        let a = object_key("2026-01-02T03:04:05.000000001Z");
        let b = object_key("2026-01-02T03:04:05.000000002Z");
        assert!(
            a.starts_with(".statelock/audit/2026-01-02/20260102T030405.000000001Z-"),
            "{a}"
        );
        assert!(a < b);
        assert_ne!(object_key("x"), object_key("x"));
    }
}

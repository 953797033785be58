//! The `http` server's record of what the state service changed: each [`StateEvent`] becomes
//! its metrics and its audit line here, so every front served by this process (the `http`
//! backend, the JSON API) records the same events the same way.

use std::sync::Arc;

use async_trait::async_trait;
use statelock_state::{StateEvent, StateEvents};
use statelock_store::ObjectStore;

use crate::audit::{self, AuditAction, AuditEvent, AuditLog};
use crate::metrics::Metrics;

/// Metrics always; audit lines when an audit trail is configured.
#[derive(Debug)]
pub(crate) struct ServerEvents {
    pub metrics: Arc<Metrics>,
    pub audit: Option<Arc<AuditLog>>,
    /// Where audit objects go when the trail is kept in the store.
    pub store: Arc<dyn ObjectStore>,
    /// Tells the web UI's open pages that something changed.
    pub changes: crate::ui::Changes,
}

#[async_trait]
impl StateEvents for ServerEvents {
    async fn record(&self, event: StateEvent<'_>) {
        if !matches!(event, StateEvent::LockWaited { .. }) {
            self.changes.notify();
        }
        if let Some(line) = self.count(event)
            && let Some(log) = &self.audit
        {
            audit::record_change(log, &*self.store, line).await;
        }
    }
}

impl ServerEvents {
    /// Updates the metrics for `event`; the audit line it makes, if any.
    fn count(&self, event: StateEvent<'_>) -> Option<AuditEvent> {
        let m = &self.metrics;
        Some(match event {
            StateEvent::LockWaited { waited, .. } => {
                m.lock_waited(waited);
                return None;
            }
            StateEvent::Locked { key, record } => {
                m.lock_taken();
                AuditEvent::new(AuditAction::Lock, Some(key)).lock_id(&record.id)
            }
            StateEvent::TookOver {
                key,
                previous,
                record,
                idle,
                ttl,
            } => {
                m.lock_takeover();
                AuditEvent::new(AuditAction::Takeover, Some(key))
                    .lock_id(&record.id)
                    .reason(format!(
                        "took over lock {} of {}, idle for {}s (--lock-ttl {}s)",
                        previous.id,
                        previous.who,
                        idle.as_secs(),
                        ttl.as_secs()
                    ))
            }
            StateEvent::Unlocked {
                key,
                id,
                method,
                forced,
            } => {
                m.lock_deleted(method);
                m.lock_released();
                let action = if forced {
                    AuditAction::ForceUnlock
                } else {
                    AuditAction::Unlock
                };
                AuditEvent::new(action, Some(key)).lock_id(id)
            }
            StateEvent::Written {
                key,
                lock_id,
                serial_before,
                after,
            } => {
                m.state_written(after.len());
                let mut event = AuditEvent::new(AuditAction::Write, Some(key))
                    .lock_id(lock_id.unwrap_or_default())
                    .states(None, Some(after));
                event.serial_before = serial_before;
                event
            }
            StateEvent::Deleted {
                key,
                lock_id,
                content,
            } => AuditEvent::new(AuditAction::Delete, Some(key))
                .lock_id(lock_id.unwrap_or_default())
                .states(Some(content), None),
            StateEvent::RolledBack {
                key,
                lock_id,
                to,
                before,
                after,
            } => AuditEvent::new(AuditAction::Rollback, Some(key))
                .lock_id(lock_id)
                .states(before, Some(after))
                .reason(format!("rolled back to version {to}")),
        })
    }
}

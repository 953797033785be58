//! The audit trail: one JSON line per change and per refused request, naming who did what.
//!
//! ```json
//! {"time":"2026-01-02T03:04:05.123456789Z","principal":"ci-team-a","remote":"10.0.0.7:51234",
//!  "action":"write","key":"team-a/prod/terraform.tfstate","lock_id":"a1b2…",
//!  "serial_before":6,"serial_after":7,"size":1432,"md5":"9e10…"}
//! ```
//!
//! Actions: `lock`, `unlock`, `force-unlock`, `takeover`, `write`, `delete`, `rollback`, and
//! `denied` (401 or 403, with `status` and `reason`). A takeover is followed by the `lock`
//! line of the same request. Lines go to a file or stdout (`sink`), and optionally into the
//! store under `.statelock/audit/` (`store`), one object per event, so that every replica
//! writes into one trail and an event is stored before its request is answered.
//!
//! Refusals of unauthenticated or unauthorised requests are never written to the store, so
//! that traffic from outside cannot make the server write; they go to the file or stdout only.

mod sink;
mod store;

use serde::Serialize;
use statelock_core::{StateKey, Timestamp};
use statelock_store::ObjectStore;

use crate::app::AppState;
use statelock_state::StateHeader;
use statelock_state::history::md5_hex;

pub use sink::AuditLog;
pub use store::AUDIT_PREFIX;

/// What an audit line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    Lock,
    Unlock,
    ForceUnlock,
    Takeover,
    Write,
    Delete,
    Rollback,
    Denied,
}

/// One audit line.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub time: String,
    /// `null` when the request proved no identity (a 401).
    pub principal: Option<String>,
    pub remote: Option<String>,
    pub action: AuditAction,
    pub key: Option<String>,
    pub lock_id: Option<String>,
    pub serial_before: Option<u64>,
    pub serial_after: Option<u64>,
    /// Size of the state written (or deleted), in bytes.
    pub size: Option<u64>,
    /// MD5 of the state written (or deleted), lower-case hex.
    pub md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why a request was refused, or what a takeover or rollback replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Method and path of a refused request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl AuditEvent {
    /// An event by the caller of the request being handled.
    pub fn new(action: AuditAction, key: Option<&StateKey>) -> AuditEvent {
        let caller = crate::auth::current();
        AuditEvent {
            time: Timestamp::now().to_rfc3339(),
            principal: Some(caller.as_ref().map_or("anonymous", |c| c.name()).to_owned()),
            remote: caller.and_then(|c| c.remote).map(|r| r.to_string()),
            action,
            key: key.map(|k| k.as_str().to_owned()),
            lock_id: None,
            serial_before: None,
            serial_after: None,
            size: None,
            md5: None,
            status: None,
            reason: None,
            request: None,
        }
    }

    pub fn lock_id(mut self, id: impl Into<String>) -> AuditEvent {
        self.lock_id = Some(id.into()).filter(|id: &String| !id.is_empty());
        self
    }

    /// Serials from the state before and after; size and MD5 of the state after, or of the
    /// one removed when there is no after (a delete).
    pub fn states(mut self, before: Option<&[u8]>, after: Option<&[u8]>) -> AuditEvent {
        let serial = |b: &[u8]| StateHeader::parse(b).ok().and_then(|h| h.serial);
        self.serial_before = before.and_then(serial);
        self.serial_after = after.and_then(serial);
        if let Some(body) = after.or(before) {
            self.size = Some(body.len() as u64);
            self.md5 = Some(md5_hex(body));
        }
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> AuditEvent {
        self.reason = Some(reason.into());
        self
    }
}

/// Records a change in `log`, and in `store` when the trail is kept there too.
pub(crate) async fn record_change(log: &AuditLog, store: &dyn ObjectStore, event: AuditEvent) {
    log.write_line(&event);
    if log.to_store() && event.action != AuditAction::Denied {
        store::put(store, &event).await;
    }
}

/// Records a refused request (file or stdout only, see the module doc).
pub fn denied(
    app: &AppState,
    key: Option<&StateKey>,
    status: u16,
    reason: &str,
    request: Option<String>,
) {
    let Some(log) = app.config().audit.as_deref() else {
        return;
    };
    let mut event = AuditEvent::new(AuditAction::Denied, key);
    if status == 401 {
        event.principal = None;
    }
    event.status = Some(status);
    event.reason = Some(reason.to_owned());
    event.request = request;
    log.write_line(&event);
}

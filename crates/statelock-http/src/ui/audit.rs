//! `GET /ui/audit`: the audit trail, when it is kept in the store (`--audit-store`): the
//! newest [`AUDIT_LIMIT`] events under `.statelock/audit/` (one object each, named so that
//! name order is time order), filtered by `?key=` (state), `?principal=` and `?action=`.
//! Events about a state are shown only to callers who may read it; events that name no state
//! (refused logins) only on a server without principals. An audit trail kept only in a file
//! or on stdout is not readable here, and the page says so.
//!
//! The same events of one state (lock, unlock, force-unlock, takeover) also appear on its
//! timeline next to the history versions ([`events_for`]).

use axum::http::request::Parts;
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use statelock_core::{StateKey, Timestamp};
use statelock_store::ObjectStoreExt;

use super::forms::{Form, encode};
use super::html::{self, Nav, attr, esc};
use super::{UiResult, html_response};
use crate::app::AppState;
use crate::audit::AUDIT_PREFIX;
use crate::auth::{self, Permission};

/// Events read for one page; older ones stay in the store (and the file).
pub const AUDIT_LIMIT: usize = 200;

/// Events read for one state's timeline.
const TIMELINE_EVENTS: usize = 100;

const READ_CONCURRENCY: usize = 8;

/// The lock events a timeline shows; writes and rollbacks are its versions already.
const LOCK_ACTIONS: [&str; 4] = ["lock", "unlock", "force-unlock", "takeover"];

/// One stored audit event, as far as the page shows it (`crate::audit::AuditEvent`).
#[derive(Debug, Deserialize)]
pub struct Row {
    pub time: String,
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub remote: Option<String>,
    pub action: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub lock_id: Option<String>,
    #[serde(default)]
    pub serial_before: Option<u64>,
    #[serde(default)]
    pub serial_after: Option<u64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A timeline's view of an event.
pub struct LockEvent {
    pub time: String,
    pub principal: String,
    pub action: String,
    pub lock_id: Option<String>,
}

fn kept_in_store(app: &AppState) -> bool {
    app.config().audit.as_ref().is_some_and(|a| a.to_store())
}

/// The newest `limit` events the caller may see, newest first; `None` when the trail is
/// not kept in the store or cannot be read.
async fn newest(app: &AppState, limit: usize) -> Option<Vec<Row>> {
    if !kept_in_store(app) {
        return None;
    }
    let mut objects = match app.store().list_all(AUDIT_PREFIX).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "UI: cannot list the audit trail");
            return None;
        }
    };
    objects.sort_by(|a, b| b.key.cmp(&a.key));
    objects.truncate(limit);
    let store = app.store();
    let rows: Vec<Option<Row>> = stream::iter(objects)
        .map(|o| async move {
            let body = store.get_if_exists(&o.key).await.ok().flatten()?.body;
            serde_json::from_slice::<Row>(&body).ok()
        })
        .buffered(READ_CONCURRENCY)
        .collect()
        .await;
    Some(
        rows.into_iter()
            .flatten()
            .filter(|r| visible(app, r))
            .collect(),
    )
}

fn visible(app: &AppState, row: &Row) -> bool {
    match row.key.as_deref().map(StateKey::parse) {
        Some(Ok(key)) => auth::may(app, Permission::Read, &key),
        _ => app.config().auth.is_none(),
    }
}

/// The lock events of `key` among the newest events, for its timeline.
pub async fn events_for(app: &AppState, key: &StateKey) -> Option<Vec<LockEvent>> {
    let rows = newest(app, TIMELINE_EVENTS).await?;
    Some(
        rows.into_iter()
            .filter(|r| r.key.as_deref() == Some(key.as_str()))
            .filter(|r| LOCK_ACTIONS.contains(&r.action.as_str()))
            .map(|r| LockEvent {
                principal: r.principal.unwrap_or_else(|| "anonymous".to_owned()),
                time: r.time,
                action: r.action,
                lock_id: r.lock_id,
            })
            .collect(),
    )
}

pub async fn page(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let (key, principal, action) = (
        query.non_empty("key"),
        query.non_empty("principal"),
        query.non_empty("action"),
    );
    let now = Timestamp::now();
    let mut main = String::from("<h1>Audit trail</h1>");
    let Some(rows) = newest(app, AUDIT_LIMIT).await else {
        main.push_str(r#"<p class="card" id="no-audit">The audit trail is not kept in the store, so this page cannot show it. Start <code>statelock serve</code> with <code>--audit-store</code> (as well as, or instead of, <code>--audit-log FILE</code>) to keep every change and refusal under <code>.statelock/audit/</code>, where every replica writes and this page reads.</p>"#);
        return Ok(html_response(html::page(
            app,
            parts,
            "Audit",
            Nav::Audit,
            false,
            &main,
        )));
    };
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| key.is_none_or(|k| r.key.as_deref() == Some(k)))
        .filter(|r| principal.is_none_or(|p| r.principal.as_deref() == Some(p)))
        .filter(|r| action.is_none_or(|a| r.action == a))
        .collect();
    let actions = [
        "lock",
        "unlock",
        "force-unlock",
        "takeover",
        "write",
        "delete",
        "rollback",
        "denied",
    ];
    let options: String = std::iter::once(r#"<option value="">any</option>"#.to_owned())
        .chain(actions.iter().map(|a| {
            format!(
                r#"<option{}>{a}</option>"#,
                if action == Some(a) { " selected" } else { "" }
            )
        }))
        .collect();
    main.push_str(&format!(
        r#"<form class="filters" method="get" action="/ui/audit" role="search">
<label>State<input name="key" value="{k}" placeholder="team/app.tfstate"></label>
<label>Principal<input name="principal" value="{p}"></label>
<label>Action<select name="action">{options}</select></label>
<button type="submit" class="secondary">Filter</button> <a href="/ui/audit">Clear</a>
</form>"#,
        k = attr(key.unwrap_or("")),
        p = attr(principal.unwrap_or("")),
    ));
    if rows.is_empty() {
        main.push_str(r#"<p class="card">No events match (among the newest ones).</p>"#);
    } else {
        main.push_str(r#"<div class="table-wrap"><table id="audit"><thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">State</th><th scope="col">Principal</th><th scope="col" class="hide-narrow">Serial</th><th scope="col">Details</th></tr></thead><tbody>"#);
        for r in &rows {
            let state = r.key.as_deref().map_or_else(
                || "—".to_owned(),
                |k| format!(r#"<a href="/ui/state?key={}">{}</a>"#, encode(k), esc(k)),
            );
            let serial = match (r.serial_before, r.serial_after) {
                (Some(b), Some(a)) => format!("{b} → {a}"),
                (None, Some(a)) => format!("→ {a}"),
                (Some(b), None) => format!("{b} →"),
                (None, None) => String::new(),
            };
            let mut details = Vec::new();
            if let Some(id) = &r.lock_id {
                details.push(format!("lock <code>{}</code>", esc(id)));
            }
            if let Some(s) = r.status {
                details.push(format!("status {s}"));
            }
            if let Some(reason) = &r.reason {
                details.push(esc(reason));
            }
            if let Some(remote) = &r.remote {
                details.push(format!(
                    r#"<span class="muted">from {}</span>"#,
                    esc(remote)
                ));
            }
            let class = if r.action == "denied" {
                "badge bad"
            } else {
                "badge"
            };
            main.push_str(&format!(
                r#"<tr><td>{when}</td><td><span class="{class}">{action}</span></td><td>{state}</td><td>{who}</td><td class="hide-narrow">{serial}</td><td>{details}</td></tr>"#,
                when = html::time_text(&r.time, now),
                action = esc(&r.action),
                who = esc(r.principal.as_deref().unwrap_or("anonymous")),
                details = details.join(" · "),
            ));
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str(&format!(
        r#"<p class="hint">The newest {AUDIT_LIMIT} events are read, then filtered; the full trail is under <code>.statelock/audit/</code> in the store.</p>"#
    ));
    Ok(html_response(html::page(
        app,
        parts,
        "Audit",
        Nav::Audit,
        true,
        &main,
    )))
}

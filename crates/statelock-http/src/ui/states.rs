//! `GET /ui/`: every state the caller may read, newest change first, with its lock holder,
//! the requests waiting for it, serial, size and last writer; `?prefix=` filters by key
//! prefix (listed from the store under it), `?q=` searches key names.
//!
//! The listing is `StateService::list_states` (the one the JSON API and `statelock state
//! ls` use); each shown state costs one read of its body (serial) and one of its newest
//! history version (last writer).

use std::time::Duration;

use axum::http::request::Parts;
use futures::stream::{self, StreamExt};
use statelock_core::state::StateHeader;
use statelock_core::{LockInfo, StateKey, Timestamp};
use statelock_state::history::md5_hex;
use statelock_state::{LockEntry, StateEntry};

use super::forms::{Form, encode};
use super::html::{self, Nav, attr, esc};
use super::{UiResult, html_response};
use crate::app::AppState;
use crate::auth::{self, Permission};

/// A lock held longer than this stands out (an apply rarely takes longer; a crashed one
/// holds its lock until someone removes it).
pub const LONG_HELD: Duration = Duration::from_secs(15 * 60);

/// Reads of state bodies and history at once.
const READ_CONCURRENCY: usize = 8;

struct Row {
    entry: StateEntry,
    serial: Option<u64>,
    /// Who wrote the current content, and when, from the server history.
    writer: Option<(String, String)>,
    written_outside: bool,
    changed: Option<Timestamp>,
}

pub async fn page(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let prefix = query.get("prefix").unwrap_or("");
    let search = query.get("q").unwrap_or("").trim().to_lowercase();
    let now = Timestamp::now();
    let entries: Vec<StateEntry> = app
        .states()
        .list_states(prefix)
        .await?
        .into_iter()
        .filter(|e| auth::may(app, Permission::Read, &e.key))
        .filter(|e| search.is_empty() || e.key.as_str().to_lowercase().contains(&search))
        .collect();
    let mut rows: Vec<Row> = stream::iter(entries)
        .map(|entry| row(app, entry))
        .buffered(READ_CONCURRENCY)
        .collect()
        .await;
    // Newest change first; locks of states never written count from when they were taken.
    rows.sort_by_key(|r| std::cmp::Reverse(r.changed.map(|t| (t.unix_secs(), t.subsec_nanos()))));
    let queue = app.states().lock_queue();
    let waiting = |key: &StateKey| {
        queue
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, w)| w.len())
    };
    let filters = format!(
        r#"<form class="filters" method="get" action="/ui/" role="search">
<label>Key prefix<input name="prefix" value="{prefix}" placeholder="team-a/"></label>
<label>Search names<input name="q" value="{q}" placeholder="prod"></label>
<button type="submit" class="secondary">Filter</button>{clear}
</form>"#,
        prefix = attr(prefix),
        q = attr(query.get("q").unwrap_or("")),
        clear = if prefix.is_empty() && search.is_empty() {
            String::new()
        } else {
            r#" <a href="/ui/">Clear</a>"#.to_owned()
        }
    );
    let body = if rows.is_empty() {
        empty(app, parts, !(prefix.is_empty() && search.is_empty()))
    } else {
        let mut table = String::from(
            r#"<div class="table-wrap"><table id="states">
<thead><tr><th scope="col">State</th><th scope="col" class="hide-narrow">Workspace</th><th scope="col">Lock</th><th scope="col">Waiting</th><th scope="col" class="num">Serial</th><th scope="col" class="num hide-narrow">Size</th><th scope="col">Last write</th></tr></thead><tbody>"#,
        );
        for r in &rows {
            table.push_str(&render_row(r, waiting(&r.entry.key), now));
        }
        table.push_str("</tbody></table></div>");
        table
    };
    let main = format!(
        "<h1>States</h1>\n{filters}\n{body}\n<p class=\"hint\">{n} state(s). Locks held longer than {long} are highlighted. This page updates itself when a lock or a state changes.</p>",
        n = rows.len(),
        long = html::span(LONG_HELD),
    );
    Ok(html_response(html::page(
        app,
        parts,
        "States",
        Nav::States,
        true,
        &main,
    )))
}

async fn row(app: &AppState, entry: StateEntry) -> Row {
    let (mut serial, mut writer, mut written_outside) = (None, None, false);
    if entry.object.is_some() {
        let body = app.states().read(&entry.key).await.ok().flatten();
        serial = body
            .as_ref()
            .and_then(|b| StateHeader::parse(b).ok())
            .and_then(|h| h.serial);
        match app.states().latest_version(&entry.key).await {
            // A state written straight on the bucket (not through statelock) has another
            // content than the newest version in the history, or no history at all.
            Ok(Some(latest)) if body.as_ref().map(|b| md5_hex(b)) == latest.md5 => {
                writer = Some((latest.who, latest.time));
            }
            Ok(_) => written_outside = true,
            Err(e) => tracing::warn!(key = %entry.key, error = %e, "UI: cannot read the history"),
        }
    }
    let changed = entry
        .object
        .as_ref()
        .and_then(|o| o.last_modified)
        .map(Timestamp::from_system_time)
        .or(match &entry.lock {
            Some(LockEntry::Held(info)) => Some(info.created),
            _ => None,
        });
    Row {
        entry,
        serial,
        writer,
        written_outside,
        changed,
    }
}

fn render_row(r: &Row, waiting: usize, now: Timestamp) -> String {
    let key = r.entry.key.as_str();
    let (lock, long) = lock_cell(r.entry.lock.as_ref(), now);
    let size = r
        .entry
        .object
        .as_ref()
        .map_or_else(|| "—".to_owned(), |o| html::size(o.size));
    let serial = r.serial.map_or_else(|| "—".to_owned(), |s| s.to_string());
    let last = match (&r.writer, r.changed) {
        _ if r.entry.object.is_none() => {
            r#"<span class="muted">not written yet (first apply running)</span>"#.to_owned()
        }
        (Some((who, time)), _) => format!("{} · {}", esc(who), html::time_text(time, now)),
        (None, Some(changed)) if r.written_outside => format!(
            r#"<span class="muted" title="written straight on the bucket, not through statelock">outside statelock</span> · {}"#,
            html::time(changed, now)
        ),
        (None, Some(changed)) => html::time(changed, now),
        (None, None) => "—".to_owned(),
    };
    let waiting = if waiting == 0 {
        r#"<span class="muted">—</span>"#.to_owned()
    } else {
        format!(r#"<span class="badge locked">{waiting} waiting</span>"#)
    };
    format!(
        r#"<tr{class} data-key="{key_attr}"><td><a class="key" href="/ui/state?key={href}">{key_text}</a></td><td class="hide-narrow">{ws}</td><td class="lock">{lock}</td><td>{waiting}</td><td class="num">{serial}</td><td class="num hide-narrow">{size}</td><td>{last}</td></tr>
"#,
        class = if long { r#" class="stale""# } else { "" },
        key_attr = attr(key),
        href = encode(key),
        key_text = esc(key),
        ws = esc(workspace(key)),
    )
}

/// The lock column: who holds it, for what, with which client, since when; and whether it
/// has been held longer than [`LONG_HELD`].
pub fn lock_cell(lock: Option<&LockEntry>, now: Timestamp) -> (String, bool) {
    match lock {
        None => (
            r#"<span class="badge ok">unlocked</span>"#.to_owned(),
            false,
        ),
        Some(LockEntry::Held(info)) => {
            let long = info.created.age_at(now) > LONG_HELD;
            (holder(info, now), long)
        }
        Some(LockEntry::Unreadable(reason)) => (
            format!(
                r#"<span class="badge bad">locked, unreadable</span> <span class="hint">{}</span>"#,
                esc(reason)
            ),
            true,
        ),
        Some(LockEntry::Failed(e)) => (
            format!(
                r#"<span class="badge bad">lock unknown</span> <span class="hint">{}</span>"#,
                esc(e)
            ),
            false,
        ),
    }
}

/// "locked alice@ci · Apply · Terraform 1.15.5 · 3 min ago".
pub fn holder(info: &LockInfo, now: Timestamp) -> String {
    let version = if info.version.is_empty() {
        String::new()
    } else {
        format!(" · {}", esc(&info.version))
    };
    format!(
        r#"<span class="badge locked">locked</span> <span class="holder">{who}</span> · {op}{version} · {since}"#,
        who = esc(&info.who),
        op = esc(html::operation(&info.operation)),
        since = html::time(info.created, now),
    )
}

/// The workspace a key stands for under Terraform's default `workspace_key_prefix` (`env:`):
/// `env:/dev/app.tfstate` is `dev`, anything else `default`.
pub fn workspace(key: &str) -> &str {
    key.strip_prefix("env:/")
        .and_then(|rest| rest.split_once('/'))
        .map_or("default", |(ws, _)| ws)
}

/// No states: what to do next, with the backend blocks to paste.
fn empty(app: &AppState, parts: &Parts, filtered: bool) -> String {
    if filtered {
        return r#"<p class="card">No state matches this filter. <a href="/ui/">Show all states</a>.</p>"#.to_owned();
    }
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let scheme = if app.config().tls { "https" } else { "http" };
    let url = format!("{scheme}://{host}/v1/states/terraform.tfstate");
    format!(
        r#"<div class="card" id="empty">
<p><strong>No states yet: point Terraform here.</strong> Add this to your configuration, run
<code>terraform init</code> and <code>terraform apply</code>, and the state appears on this page.</p>
<pre>terraform {{
  backend "http" {{
    address        = "{url}"
    lock_address   = "{url}"
    unlock_address = "{url}"
    lock_method    = "LOCK"
    unlock_method  = "UNLOCK"
  }}
}}</pre>
<p class="hint">Replace <code>terraform.tfstate</code> with the state's key. Terraform's own
<code>backend "s3"</code> works too, against the S3 front printed at start-up.</p>
</div>"#,
        url = esc(&url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_follow_the_default_prefix() {
        assert_eq!(workspace("env:/dev/app.tfstate"), "dev");
        assert_eq!(workspace("env:/prod/team/a.tfstate"), "prod");
        assert_eq!(workspace("team/app.tfstate"), "default");
    }
}

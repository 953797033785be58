//! `GET /ui/locks`: every held lock the caller may read (through statelock or written
//! straight on the bucket by Terraform's `backend "s3"`: both are the same `.tflock`
//! objects), with its age, the time left before `--lock-ttl` lets an admin's lock request
//! take it over, and the requests waiting for it on this replica.
//!
//! `GET /ui/unlock?key=K` asks for confirmation, naming the holder; `POST /ui/unlock` then
//! removes the lock with `StateService::unlock`, the call the `http` backend's UNLOCK makes:
//! by the holder's ID as shown (so a lock taken by someone else in between is refused, and
//! named), or, for a lock object that is not a valid record, by removing it. Needs `admin`,
//! as a force-unlock does through the backend.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use statelock_core::{StateKey, Timestamp};
use statelock_lock::LockError;
use statelock_state::{LockEntry, StateEntry, Unlock};

use super::forms::{Form, encode};
use super::html::{self, Nav, attr, esc};
use super::session::{check_post, csrf_field};
use super::states::{LONG_HELD, holder};
use super::{UiError, UiResult, html_response, see_other, state_key};
use crate::app::AppState;
use crate::auth::{self, Permission};
use crate::error::ApiError;

pub async fn page(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let now = Timestamp::now();
    let ttl = app.config().locking.ttl;
    let locked: Vec<StateEntry> = app
        .states()
        .list_states("")
        .await?
        .into_iter()
        .filter(|e| e.lock.is_some() && auth::may(app, Permission::Read, &e.key))
        .collect();
    let queue = app.states().lock_queue();
    let mut main = String::from("<h1>Locks</h1>");
    if let Some(done) = query.non_empty("unlocked") {
        main.push_str(&format!(
            r#"<p class="notice ok-note" role="status" id="done">The lock on {} was removed.</p>"#,
            esc(done)
        ));
    }
    if locked.is_empty() {
        main.push_str(r#"<p class="card" id="no-locks">No state is locked. Locks appear here while Terraform holds them (plan, apply, state commands), whether it goes through statelock or writes <code>.tflock</code> objects on the bucket itself.</p>"#);
    } else {
        main.push_str(&format!(
            r#"<div class="table-wrap"><table id="locks"><thead><tr><th scope="col">State</th><th scope="col">Holder</th><th scope="col" class="hide-narrow">Lock ID</th><th scope="col">Held for</th><th scope="col">{ttl_head}</th><th scope="col">Waiting</th><th scope="col"><span class="hide-narrow">Action</span></th></tr></thead><tbody>"#,
            ttl_head = if ttl.is_some() { "Takeover in" } else { "TTL" },
        ));
        for e in &locked {
            let key = &e.key;
            let k = encode(key.as_str());
            let (who, id, age, long) = match &e.lock {
                Some(LockEntry::Held(info)) => {
                    let age = info.created.age_at(now);
                    (
                        holder(info, now),
                        esc(&info.id),
                        html::span(age),
                        age > LONG_HELD,
                    )
                }
                Some(LockEntry::Unreadable(r)) => unknown_lock("not a lock record", r, true),
                Some(LockEntry::Failed(r)) => unknown_lock("cannot be read", r, false),
                None => continue,
            };
            let ttl_cell = match (ttl, &e.lock) {
                (None, _) => r#"<span class="muted" title="start serve with --lock-ttl to let stuck locks be taken over">off</span>"#.to_owned(),
                (Some(ttl), Some(LockEntry::Held(info))) => ttl_left(ttl, info.created, e, now),
                (Some(_), _) => "—".to_owned(),
            };
            let waiting = queue
                .iter()
                .find(|(q, _)| q == key)
                .map(|(_, w)| {
                    let items: Vec<String> = w
                        .iter()
                        .map(|w| {
                            format!(
                                "<li>{} · {} · since {}</li>",
                                esc(&w.who),
                                esc(html::operation(&w.operation)),
                                html::time(w.since, now)
                            )
                        })
                        .collect();
                    format!(r#"<ol class="queue">{}</ol>"#, items.join(""))
                })
                .unwrap_or_else(|| r#"<span class="muted">—</span>"#.to_owned());
            let action = if auth::may(app, Permission::Admin, key) {
                format!(
                    r#"<a class="button secondary" href="/ui/unlock?key={k}">Force-unlock…</a>"#
                )
            } else {
                r#"<span class="hint">needs admin</span>"#.to_owned()
            };
            main.push_str(&format!(
                r#"<tr{class} data-key="{key_attr}"><td><a class="key" href="/ui/state?key={k}">{key_text}</a></td><td class="holder-cell">{who}</td><td class="hide-narrow"><code>{id}</code></td><td>{age}</td><td>{ttl_cell}</td><td>{waiting}</td><td>{action}</td></tr>"#,
                class = if long { r#" class="stale""# } else { "" },
                key_attr = attr(key.as_str()),
                key_text = esc(key.as_str()),
            ));
        }
        main.push_str("</tbody></table></div>");
    }
    main.push_str(&format!(
        r#"<p class="hint">This page updates itself when a lock is taken or released. Locks held longer than {} are highlighted. The queue shows the requests waiting on this replica.</p>"#,
        html::span(LONG_HELD)
    ));
    Ok(html_response(html::page(
        app,
        parts,
        "Locks",
        Nav::Locks,
        true,
        &main,
    )))
}

/// The holder, ID, age and stand-out cells of a lock object that cannot be shown as a lock:
/// `label` says why, `reason` is the detail.
fn unknown_lock(label: &str, reason: &str, stands_out: bool) -> (String, String, String, bool) {
    (
        format!(
            r#"<span class="badge bad">{label}</span> <span class="hint">{}</span>"#,
            esc(reason)
        ),
        String::new(),
        "?".to_owned(),
        stands_out,
    )
}

/// How long until the lock may be taken over: the TTL less its idle time, judged as the
/// takeover judges it, from the later of the lock's creation and the state's last write.
fn ttl_left(ttl: Duration, created: Timestamp, e: &StateEntry, now: Timestamp) -> String {
    let written = e
        .object
        .as_ref()
        .and_then(|o| o.last_modified)
        .map(Timestamp::from_system_time);
    let idle_since = match written {
        Some(w) if w.unix_secs() > created.unix_secs() => w,
        _ => created,
    };
    let idle = idle_since.age_at(now);
    match ttl.checked_sub(idle) {
        Some(left) if !left.is_zero() => format!(
            r#"<span title="--lock-ttl {}">{}</span>"#,
            html::span(ttl),
            html::span(left)
        ),
        _ => format!(
            r#"<span class="badge bad" title="idle for {}, --lock-ttl {}">stuck: an admin's lock request takes it over</span>"#,
            html::span(idle),
            html::span(ttl)
        ),
    }
}

/// The lock entry of `key`, if it is locked.
async fn current_lock(app: &AppState, key: &StateKey) -> Result<Option<LockEntry>, UiError> {
    Ok(app
        .states()
        .list_states(key.as_str())
        .await?
        .into_iter()
        .find(|e| &e.key == key)
        .and_then(|e| e.lock))
}

pub async fn confirm(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let key = state_key(app, &query, Permission::Admin)?;
    let now = Timestamp::now();
    let k = encode(key.as_str());
    let (what, id) = match current_lock(app, &key).await? {
        None => {
            let main = format!(
                r#"<h1>Force-unlock</h1><p class="card">State <a href="/ui/state?key={k}">{}</a> is not locked (any more): nothing to do.</p>"#,
                esc(key.as_str())
            );
            return Ok(html_response(html::page(
                app,
                parts,
                "Force-unlock",
                Nav::Locks,
                false,
                &main,
            )));
        }
        Some(LockEntry::Held(info)) => (
            format!(
                "{} holds it for {} since {} (lock ID <code>{}</code>, client {}).",
                esc(&info.who),
                esc(html::operation(&info.operation)),
                html::time(info.created, now),
                esc(&info.id),
                esc(&info.version)
            ),
            info.id,
        ),
        Some(LockEntry::Unreadable(reason)) => (
            format!(
                "The lock object is not a valid lock record ({}), so nobody can be named.",
                esc(&reason)
            ),
            String::new(),
        ),
        Some(LockEntry::Failed(e)) => {
            return Err(UiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the lock of {key} cannot be read: {e}"),
            ));
        }
    };
    let holder_name = match &id {
        id if id.is_empty() => "the unreadable lock".to_owned(),
        _ => "this lock".to_owned(),
    };
    let main = format!(
        r#"<p class="hint"><a href="/ui/locks">Locks</a> /</p>
<h1>Force-unlock {key_text}?</h1>
<div class="card" id="holder"><p>{what}</p>
<p>Removing the lock lets others write the state. If that run is still going, its next write is
refused (it no longer holds the lock), but anything it already changed outside the state stays:
only force-unlock a lock whose run is known to have stopped.</p></div>
<form method="post" action="/ui/unlock" class="actions" id="confirm-unlock">
{csrf}
<input type="hidden" name="key" value="{key_attr}">
<input type="hidden" name="id" value="{id_attr}">
<button type="submit" class="danger">Remove {holder_name}</button>
<a class="button secondary" href="/ui/locks">Cancel</a>
</form>"#,
        key_text = esc(key.as_str()),
        csrf = csrf_field(app, parts),
        key_attr = attr(key.as_str()),
        id_attr = attr(&id),
    );
    Ok(html_response(html::page(
        app,
        parts,
        "Force-unlock",
        Nav::Locks,
        false,
        &main,
    )))
}

pub async fn unlock(app: &AppState, parts: &Parts, body: Body) -> UiResult {
    let form = Form::body(parts, body).await?;
    check_post(app, parts, &form, true)?;
    let key = state_key(app, &form, Permission::Admin)?;
    let id = form.get("id").unwrap_or("");
    let how = if id.is_empty() {
        // Only an unreadable lock was confirmed without an ID: remove nothing else.
        if let Some(LockEntry::Held(info)) = current_lock(app, &key).await? {
            return Err(ApiError::conflict(format!(
                "state {key} is now locked by {} (lock ID {}), not by the unreadable lock you confirmed; nothing was removed",
                info.who, info.id
            ))
            .into());
        }
        Unlock::Break
    } else {
        Unlock::Release { id, forced: true }
    };
    match app.states().unlock(&key, how).await {
        Ok(_) | Err(LockError::NotLocked { .. }) => Ok(see_other(&format!(
            "/ui/locks?unlocked={}",
            encode(key.as_str())
        ))),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

//! `GET /ui/state?key=K`: one state: its lock and queue, outputs (sensitive values never
//! shown: `StateSummary` withholds them before anything is rendered), resources by address,
//! the history as a timeline (with the lock events of the audit trail when it is kept in the
//! store), and a form to diff any two versions.

use axum::http::request::Parts;
use statelock_core::state::{StateSummary, resources};
use statelock_core::{StateKey, Timestamp};
use statelock_state::LockEntry;

use super::forms::{Form, encode};
use super::html::{self, Nav, attr, esc};
use super::{UiResult, audit, html_response, state_key};
use crate::app::AppState;
use crate::auth::{self, Permission};

/// Versions shown on the timeline; older ones are listed by the API and `state history`.
const TIMELINE_LIMIT: usize = 100;

/// One timeline item: a version, or a lock event from the audit trail.
struct Item {
    time: String,
    html: String,
}

pub async fn page(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let key = state_key(app, &query, Permission::Read)?;
    let now = Timestamp::now();
    let k = encode(key.as_str());
    let body = app.states().read(&key).await?;
    let lock = app
        .states()
        .list_states(key.as_str())
        .await?
        .into_iter()
        .find(|e| e.key == key)
        .and_then(|e| e.lock);
    let admin = auth::may(app, Permission::Admin, &key);
    let mut main = format!(
        r#"<p class="hint"><a href="/ui/">States</a> /</p><h1 class="key">{}</h1>"#,
        esc(key.as_str())
    );
    if let Some(serial) = query.non_empty("rolled_back") {
        main.push_str(&format!(
            r#"<p class="notice ok-note" role="status" id="done">Rolled back: the state is now serial {}.</p>"#,
            esc(serial)
        ));
    }
    main.push_str(&lock_card(app, &key, lock.as_ref(), admin, now));
    let versions = app.states().server_history(&key).await?;
    match &body {
        None => main.push_str(
            r#"<p class="card">No state is stored at this key (yet, or any more). Its history, if any, is below.</p>"#,
        ),
        Some(bytes) => main.push_str(&contents(&k, bytes)),
    }
    // The timeline.
    let mut items: Vec<Item> = versions
        .iter()
        .take(TIMELINE_LIMIT)
        .enumerate()
        .map(|(i, v)| {
            let previous = versions.get(i + 1);
            let kind = serde_json::to_value(v.kind)
                .ok()
                .and_then(|k| k.as_str().map(str::to_owned))
                .unwrap_or_default();
            let serial = v.serial.map_or_else(|| "?".to_owned(), |s| s.to_string());
            let mut links = vec![format!(
                r#"<a href="/ui/raw?key={k}&amp;version={id}" download>raw JSON</a>"#,
                id = encode(&v.id)
            )];
            if body.is_some() && i > 0 {
                links.push(format!(
                    r#"<a href="/ui/diff?key={k}&amp;from={id}&amp;to=current">diff with current</a>"#,
                    id = encode(&v.id)
                ));
            }
            if let Some(p) = previous {
                links.push(format!(
                    r#"<a href="/ui/diff?key={k}&amp;from={p}&amp;to={id}">what changed</a>"#,
                    p = encode(&p.id),
                    id = encode(&v.id)
                ));
            }
            if admin && i > 0 && body.is_some() {
                links.push(format!(
                    r#"<a href="/ui/rollback?key={k}&amp;to={id}">roll back to this…</a>"#,
                    id = encode(&v.id)
                ));
            }
            Item {
                time: v.time.clone(),
                html: format!(
                    r#"<li class="kind-{kind_attr}" data-version="{id_attr}"><div class="tl-head"><span class="badge">{kind}</span><strong>serial {serial}</strong><span>{who}</span>{when}<span class="muted">{size}</span>{current}</div><div class="tl-links">{links}</div></li>"#,
                    kind_attr = attr(&kind),
                    id_attr = attr(&v.id),
                    kind = esc(&kind),
                    who = esc(&v.who),
                    when = html::time_text(&v.time, now),
                    size = html::size(v.size),
                    current = if i == 0 && body.is_some() {
                        r#"<span class="badge ok">current</span>"#
                    } else {
                        ""
                    },
                    links = links.join(""),
                ),
            }
        })
        .collect();
    if let Some(events) = audit::events_for(app, &key).await {
        items.extend(events.into_iter().map(|e| Item {
            html: format!(
                r#"<li class="kind-{a}"><div class="tl-head"><span class="badge">{a_text}</span><span>{who}</span>{when}<span class="muted">{id}</span></div></li>"#,
                a = attr(&e.action),
                a_text = esc(&e.action),
                who = esc(&e.principal),
                when = html::time_text(&e.time, now),
                id = e.lock_id.as_deref().map(|i| format!("lock {}", esc(i))).unwrap_or_default(),
            ),
            time: e.time,
        }));
    }
    // RFC 3339 UTC texts with the same precision sort as times.
    items.sort_by(|a, b| b.time.cmp(&a.time));
    main.push_str("<h2 id=\"history\">History</h2>");
    if items.is_empty() {
        main.push_str(r#"<p class="card">No history yet: statelock records a version for every write it accepts.</p>"#);
    } else {
        main.push_str(r#"<ol class="timeline" id="timeline">"#);
        for item in &items {
            main.push_str(&item.html);
        }
        main.push_str("</ol>");
        if versions.len() > TIMELINE_LIMIT {
            main.push_str(&format!(
                r#"<p class="hint">The newest {TIMELINE_LIMIT} of {} versions; <code>statelock state history</code> lists all.</p>"#,
                versions.len()
            ));
        }
    }
    if versions.len() > 1 || (body.is_some() && !versions.is_empty()) {
        main.push_str(&diff_form(&key, &versions));
    }
    Ok(html_response(html::page(
        app,
        parts,
        key.as_str(),
        Nav::States,
        true,
        &main,
    )))
}

/// The lock: holder and the way to remove it, and the queue.
fn lock_card(
    app: &AppState,
    key: &StateKey,
    lock: Option<&LockEntry>,
    admin: bool,
    now: Timestamp,
) -> String {
    let (cell, _) = super::states::lock_cell(lock, now);
    let unlock = match lock {
        Some(LockEntry::Held(_) | LockEntry::Unreadable(_)) if admin => format!(
            r#" <a class="button secondary" href="/ui/unlock?key={}">Force-unlock…</a>"#,
            encode(key.as_str())
        ),
        Some(LockEntry::Held(_) | LockEntry::Unreadable(_)) => {
            r#" <span class="hint">(force-unlock needs the admin grant on this state)</span>"#
                .to_owned()
        }
        _ => String::new(),
    };
    let queue = app
        .states()
        .lock_queue()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, w)| w)
        .unwrap_or_default();
    let waiting = if queue.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = queue
            .iter()
            .map(|w| {
                format!(
                    "<li>{} · {} · waiting since {}</li>",
                    esc(&w.who),
                    esc(html::operation(&w.operation)),
                    html::time(w.since, now)
                )
            })
            .collect();
        format!(
            r#"<p>Waiting, in line order:</p><ol class="queue">{}</ol>"#,
            list.join("")
        )
    };
    format!(r#"<div class="card" id="lock"><p>{cell}{unlock}</p>{waiting}</div>"#)
}

/// Serial, lineage, outputs and resources of the current state.
fn contents(k: &str, bytes: &[u8]) -> String {
    let summary = match StateSummary::parse(bytes) {
        Ok(s) => s,
        Err(e) => {
            return format!(
                r#"<p class="error">The stored object is not a state document: {}</p>"#,
                esc(&e)
            );
        }
    };
    let mut out = format!(
        r#"<dl class="facts card"><dt>Serial</dt><dd id="serial">{serial}</dd><dt>Lineage</dt><dd>{lineage}</dd><dt>Written by</dt><dd>{tf}</dd><dt>Size</dt><dd>{size}</dd><dt>Download</dt><dd><a href="/ui/raw?key={k}&amp;version=current" download>current state (JSON)</a></dd></dl>"#,
        serial = summary
            .serial
            .map_or_else(|| "—".to_owned(), |s| s.to_string()),
        lineage = esc(summary.lineage.as_deref().unwrap_or("—")),
        tf = summary.terraform_version.as_deref().map_or_else(
            || "—".to_owned(),
            |v| format!("Terraform/OpenTofu {}", esc(v))
        ),
        size = html::size(bytes.len() as u64),
    );
    if summary.encrypted {
        out.push_str(r#"<p class="notice">This state is OpenTofu-encrypted: only its serial and lineage can be read; the server never has the key.</p>"#);
        return out;
    }
    out.push_str("<h2 id=\"outputs\">Outputs</h2>");
    match summary.outputs.as_deref() {
        Some([]) | None => out.push_str(r#"<p class="muted">No outputs.</p>"#),
        Some(outputs) => {
            out.push_str(r#"<div class="table-wrap"><table id="outputs-table"><thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Value</th></tr></thead><tbody>"#);
            for o in outputs {
                let kind = o.kind.as_ref().map(|k| k.to_string()).unwrap_or_default();
                let value = match (&o.value, o.sensitive) {
                    // The summary withholds sensitive values; this only labels them.
                    (_, true) | (None, _) => r#"<span class="badge">sensitive</span>"#.to_owned(),
                    (Some(v), false) => format!("<code>{}</code>", esc(&v.to_string())),
                };
                out.push_str(&format!(
                    "<tr><td>{}</td><td><code>{}</code></td><td>{value}</td></tr>",
                    esc(&o.name),
                    esc(&kind)
                ));
            }
            out.push_str("</tbody></table></div>");
        }
    }
    out.push_str("<h2 id=\"resources\">Resources</h2>");
    match resources(bytes) {
        Ok(rows) if rows.is_empty() => out.push_str(r#"<p class="muted">No resources.</p>"#),
        Ok(rows) => {
            out.push_str(r#"<div class="table-wrap"><table id="resources-table"><thead><tr><th scope="col">Address</th><th scope="col">Type</th><th scope="col" class="hide-narrow">Provider</th><th scope="col" class="num">Instances</th></tr></thead><tbody>"#);
            for r in rows {
                out.push_str(&format!(
                    r#"<tr><td><code>{}</code></td><td>{}</td><td class="hide-narrow">{}</td><td class="num">{}</td></tr>"#,
                    esc(&r.address),
                    esc(&r.kind),
                    esc(&r.provider),
                    r.instances
                ));
            }
            out.push_str("</tbody></table></div>");
        }
        Err(e) => out.push_str(&format!(r#"<p class="error">{}</p>"#, esc(&e))),
    }
    out
}

/// Pick any two versions (or a version and the current state) to compare.
fn diff_form(key: &StateKey, versions: &[statelock_state::history::VersionMeta]) -> String {
    let options = |selected: usize| -> String {
        let mut out = String::from(r#"<option value="current">current state</option>"#);
        for (i, v) in versions.iter().enumerate() {
            let serial = v.serial.map_or_else(|| "?".to_owned(), |s| s.to_string());
            out.push_str(&format!(
                r#"<option value="{}"{}>serial {serial} · {} · {}</option>"#,
                attr(&v.id),
                if i == selected { " selected" } else { "" },
                esc(&v.time),
                esc(&v.who)
            ));
        }
        out
    };
    format!(
        r#"<h2 id="compare">Compare versions</h2>
<form class="filters" method="get" action="/ui/diff">
<input type="hidden" name="key" value="{key}">
<label>From<select name="from">{from}</select></label>
<label>To<select name="to">{to}</select></label>
<button type="submit" class="secondary">Show diff</button>
</form>"#,
        key = attr(key.as_str()),
        from = options(1.min(versions.len().saturating_sub(1))),
        to = options(usize::MAX),
    )
}

//! `GET /ui/diff?key=K&from=ID&to=ID|current`: what changed between two versions, in the
//! terms of the API's diff (`statelock_core::state::diff`: resource instances added, removed
//! and changed by address; outputs by name, sensitive values never shown); and
//! `GET /ui/raw?key=K&version=ID|current`: a version's bytes as a download.

use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use statelock_core::StateKey;
use statelock_core::state::{DiffError, OutputChange, StateDiff, diff};
use statelock_state::versions::FetchError;

use super::forms::{Form, encode};
use super::html::{self, Nav, esc};
use super::{UiError, UiResult, html_response, state_key};
use crate::app::AppState;
use crate::auth::Permission;

pub async fn page(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let key = state_key(app, &query, Permission::Read)?;
    let from = query
        .non_empty("from")
        .ok_or_else(|| UiError::bad_request("the diff needs ?from=<version ID>"))?;
    let to = query.non_empty("to").unwrap_or("current");
    let old = version(app, &key, from).await?;
    let new = version(app, &key, to).await?;
    let d = diff(&old, &new).map_err(|e| {
        let (side, name) = match &e {
            DiffError::Encrypted(s) | DiffError::NotAState(s, _) => (
                *s,
                if *s == statelock_core::state::Side::From {
                    from
                } else {
                    to
                },
            ),
        };
        let why = match e {
            DiffError::Encrypted(_) => {
                "is OpenTofu-encrypted, and the server never has its key".to_owned()
            }
            DiffError::NotAState(_, reason) => format!("is not a state document: {reason}"),
        };
        UiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("cannot diff: the {side} side ({name}) of {key} {why}"),
        )
    })?;
    let k = encode(key.as_str());
    let main = format!(
        r#"<p class="hint"><a href="/ui/">States</a> / <a href="/ui/state?key={k}">{key_text}</a> /</p>
<h1>Diff</h1>
<p>From <code>{from}</code> to <code>{to}</code>. <a href="/v1/api/states/{key_path}/diff?from={from_q}&amp;to={to_q}">The same as JSON</a> (API).</p>
{body}"#,
        key_text = esc(key.as_str()),
        from = esc(from),
        to = esc(to),
        key_path = esc(key.as_str()),
        from_q = encode(from),
        to_q = encode(to),
        body = render(&d),
    );
    Ok(html_response(html::page(
        app,
        parts,
        "Diff",
        Nav::States,
        false,
        &main,
    )))
}

/// The diff as lists; "no changes" when empty.
fn render(d: &StateDiff) -> String {
    if d.is_empty() {
        return r#"<p class="card" id="no-changes">No changes: both versions have the same resources and outputs.</p>"#.to_owned();
    }
    let mut out = String::from(r#"<div id="diff">"#);
    let addresses = |title: &str, class: &str, list: &[String]| -> String {
        if list.is_empty() {
            return String::new();
        }
        let items: Vec<String> = list
            .iter()
            .map(|a| format!("<li><code>{}</code></li>", esc(a)))
            .collect();
        format!(
            r#"<h3 class="{class}">{title} ({})</h3><ul>{}</ul>"#,
            list.len(),
            items.join("")
        )
    };
    out.push_str("<h2>Resources</h2>");
    let r = &d.resources;
    if r.added.is_empty() && r.removed.is_empty() && r.changed.is_empty() {
        out.push_str(r#"<p class="muted">No resource changes.</p>"#);
    }
    out.push_str(&addresses("Added", "diff-added", &r.added));
    out.push_str(&addresses("Removed", "diff-removed", &r.removed));
    out.push_str(&addresses("Changed", "diff-changed", &r.changed));
    out.push_str("<h2>Outputs</h2>");
    let o = &d.outputs;
    if o.added.is_empty() && o.removed.is_empty() && o.changed.is_empty() {
        out.push_str(r#"<p class="muted">No output changes.</p>"#);
    } else {
        out.push_str(r#"<div class="table-wrap"><table id="output-diff"><thead><tr><th scope="col">Output</th><th scope="col">Change</th><th scope="col">From</th><th scope="col">To</th></tr></thead><tbody>"#);
        for (what, class, list) in [
            ("added", "diff-added", &o.added),
            ("removed", "diff-removed", &o.removed),
            ("changed", "diff-changed", &o.changed),
        ] {
            for c in list {
                out.push_str(&output_row(c, what, class));
            }
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</div>");
    out
}

fn output_row(c: &OutputChange, what: &str, class: &str) -> String {
    let value = |v: &Option<serde_json::Value>| match (v, c.sensitive) {
        (_, true) => r#"<span class="badge">sensitive</span>"#.to_owned(),
        (Some(v), false) => format!("<code>{}</code>", esc(&v.to_string())),
        (None, false) => "—".to_owned(),
    };
    format!(
        r#"<tr><td>{}</td><td class="{class}">{what}</td><td>{}</td><td>{}</td></tr>"#,
        esc(&c.name),
        value(&c.from),
        value(&c.to)
    )
}

/// `GET /ui/raw`: the version's bytes, exactly as stored, as a download.
pub async fn raw(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let key = state_key(app, &query, Permission::Read)?;
    let id = query.non_empty("version").unwrap_or("current");
    let body = version(app, &key, id).await?;
    let name: String = format!("{}-{id}.json", key.as_str())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response();
    html::secure_headers(&mut response);
    Ok(response)
}

/// Version `id` of `key` (`current`, a server history ID or an S3 version ID), the same
/// lookup as `statelock state show`.
pub async fn version(app: &AppState, key: &StateKey, id: &str) -> Result<Bytes, UiError> {
    match app.states().version(key, id).await {
        Ok(found) => Ok(found.body),
        Err(FetchError::Store { source, .. }) => Err(source.into()),
        Err(e) if e.is_missing() => Err(UiError::new(StatusCode::NOT_FOUND, e.to_string())),
        Err(e) => Err(UiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
    }
}

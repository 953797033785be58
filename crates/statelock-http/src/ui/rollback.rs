//! `GET /ui/rollback?key=K&to=ID`: the plan of a rollback (the version's serial, the current
//! serial, the serial and lineage the copy gets, and the diff against the current state),
//! with a confirmation; `POST /ui/rollback`: the rollback itself, planned again and run by
//! the same service calls as the API and `statelock state rollback`
//! (`StateService::plan_rollback`, then `crate::api::rollback::execute`). Needs `admin`.
//!
//! The confirmation carries the current serial the plan was made against; when the state
//! has changed since, the POST refuses and shows the new plan instead of rolling back
//! something nobody looked at.

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use statelock_core::StateKey;
use statelock_core::state::{diff, lineage_text};
use statelock_state::PlannedRollback;

use super::forms::{Form, encode};
use super::html::{self, Nav, attr, esc};
use super::session::{check_post, csrf_field};
use super::{UiError, UiResult, html_response, see_other, state_key};
use crate::api::rollback::{execute, refusal};
use crate::app::AppState;
use crate::auth::Permission;

async fn plan(
    app: &AppState,
    key: &StateKey,
    id: &str,
    force: bool,
) -> Result<PlannedRollback, UiError> {
    Ok(app
        .states()
        .plan_rollback(key, id, force)
        .await
        .map_err(|e| refusal(key, id, e))?)
}

fn serial_text(s: Option<u64>) -> String {
    s.map_or_else(|| "none".to_owned(), |s| s.to_string())
}

pub async fn confirm(app: &AppState, parts: &Parts) -> UiResult {
    let query = Form::query(parts)?;
    let key = state_key(app, &query, Permission::Admin)?;
    let id = query
        .non_empty("to")
        .ok_or_else(|| UiError::bad_request("a rollback needs ?to=<version ID>"))?;
    let force = query.get("force") == Some("true");
    let planned = plan(app, &key, id, force).await?;
    Ok(html_response(html::page(
        app,
        parts,
        "Roll back",
        Nav::States,
        false,
        &render_plan(app, parts, &key, id, &planned, None),
    )))
}

fn render_plan(
    app: &AppState,
    parts: &Parts,
    key: &StateKey,
    id: &str,
    planned: &PlannedRollback,
    notice: Option<&str>,
) -> String {
    let p = &planned.plan;
    let k = encode(key.as_str());
    let changes = match planned.current_body() {
        Some(current) => match diff(current, &p.body) {
            Ok(d) if d.is_empty() => "<p>The version has the same resources and outputs as the current state.</p>".to_owned(),
            Ok(d) => {
                let list = |label: &str, items: &[String]| {
                    if items.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "<li>{label}: {}</li>",
                            items.iter().map(|a| format!("<code>{}</code>", esc(a))).collect::<Vec<_>>().join(", ")
                        )
                    }
                };
                let outputs: Vec<String> = d
                    .outputs
                    .added
                    .iter()
                    .chain(&d.outputs.removed)
                    .chain(&d.outputs.changed)
                    .map(|o| o.name.clone())
                    .collect();
                format!(
                    "<p>Against the current state, the rollback changes:</p><ul>{}{}{}{}</ul>",
                    list("resources added back", &d.resources.added),
                    list("resources removed", &d.resources.removed),
                    list("resources changed", &d.resources.changed),
                    list("outputs", &outputs),
                )
            }
            Err(_) => "<p class=\"muted\">The diff against the current state cannot be shown (encrypted or not a state).</p>".to_owned(),
        },
        None => "<p>There is no current state; the version is written as the first one.</p>".to_owned(),
    };
    let notice = notice
        .map(|n| format!(r#"<p class="notice" role="alert">{}</p>"#, esc(n)))
        .unwrap_or_default();
    let action = if planned.no_changes() {
        format!(
            r#"<p class="notice">The version has the current content: rolling back would write nothing.</p><div class="actions"><a class="button secondary" href="/ui/state?key={k}">Back</a></div>"#
        )
    } else {
        format!(
            r#"<form method="post" action="/ui/rollback" class="actions" id="confirm-rollback">
{csrf}
<input type="hidden" name="key" value="{key_attr}">
<input type="hidden" name="to" value="{id_attr}">
<input type="hidden" name="force" value="{force}">
<input type="hidden" name="expect_serial" value="{current}">
<button type="submit" class="danger">Roll back {key_text} to serial {version}</button>
<a class="button secondary" href="/ui/state?key={k}">Cancel</a>
</form>"#,
            csrf = csrf_field(app, parts),
            key_attr = attr(key.as_str()),
            id_attr = attr(id),
            force = planned.force,
            current = serial_text(p.current_serial),
            key_text = esc(key.as_str()),
            version = serial_text(p.version_serial),
        )
    };
    let lineage_note = if p.lineage_forced {
        r#" <span class="badge bad">lineage replaced</span>"#
    } else {
        ""
    };
    format!(
        r#"<p class="hint"><a href="/ui/">States</a> / <a href="/ui/state?key={k}">{key_text}</a> /</p>
<h1>Roll back {key_text}</h1>
{notice}
<dl class="facts card" id="plan">
<dt>Version</dt><dd><code>{id}</code> (serial {version})</dd>
<dt>Current serial</dt><dd>{current}</dd>
<dt>New serial</dt><dd>{new}</dd>
<dt>Lineage</dt><dd>{lineage}{lineage_note}</dd>
</dl>
<p>The version's content is written as a new serial, under the state's own lock, so Terraform
runs and other servers are excluded while it happens. The history keeps every version, so this
can itself be rolled back.</p>
{changes}
{action}"#,
        key_text = esc(key.as_str()),
        id = esc(id),
        version = serial_text(p.version_serial),
        current = serial_text(p.current_serial),
        new = p.serial,
        lineage = esc(&lineage_text(p.lineage.as_deref())),
    )
}

pub async fn rollback(app: &AppState, parts: &Parts, body: Body) -> UiResult {
    let form = Form::body(parts, body).await?;
    check_post(app, parts, &form, true)?;
    let key = state_key(app, &form, Permission::Admin)?;
    let id = form
        .non_empty("to")
        .ok_or_else(|| UiError::bad_request("the rollback form has no version (to)"))?;
    let force = form.get("force") == Some("true");
    let planned = plan(app, &key, id, force).await?;
    let seen = form.get("expect_serial").unwrap_or("");
    if serial_text(planned.plan.current_serial) != seen {
        let notice = format!(
            "The state changed since the plan was shown (serial {seen} then, {} now); nothing was rolled back. Check the new plan below.",
            serial_text(planned.plan.current_serial)
        );
        return Ok(html::respond(
            StatusCode::CONFLICT,
            html::page(
                app,
                parts,
                "Roll back",
                Nav::States,
                false,
                &render_plan(app, parts, &key, id, &planned, Some(&notice)),
            ),
        ));
    }
    if planned.no_changes() {
        return Ok(see_other(&format!(
            "/ui/state?key={}",
            encode(key.as_str())
        )));
    }
    let written = execute(app, &planned, id).await?;
    tracing::info!(%key, to = %id, serial = written.serial, "rollback from the web UI");
    Ok(see_other(&format!(
        "/ui/state?key={}&rolled_back={}",
        encode(key.as_str()),
        written.serial
    )))
}

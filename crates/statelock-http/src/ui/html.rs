//! HTML building blocks: escaping, the page frame (navigation, who is signed in, the live
//! indicator), times as relative ages with the exact time on hover, sizes, error pages.
//!
//! Every value that comes from a state, a lock record or a request goes through [`esc`]
//! (or [`attr`]); nothing is inserted raw. The Content-Security-Policy allows only the
//! UI's own script and stylesheet, so even a missed escape could not run inline script.

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use statelock_core::Timestamp;

use super::{UiError, assets, session};
use crate::app::AppState;

/// Escapes text for element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Same as [`esc`]; says at the call site that the value goes into an attribute.
pub fn attr(text: &str) -> String {
    esc(text)
}

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    States,
    Locks,
    Audit,
    None,
}

/// A whole page: `title`, the current navigation entry and the `<main>` content. `live`
/// pages reload their `<main>` when the server says something changed.
pub fn page(
    app: &AppState,
    parts: &Parts,
    title: &str,
    nav: Nav,
    live: bool,
    main: &str,
) -> String {
    let link = |href: &str, label: &str, which: Nav| {
        let current = if nav == which {
            r#" aria-current="page""#
        } else {
            ""
        };
        format!(r#"<a href="{href}"{current}>{label}</a>"#)
    };
    let who = match session::signed_in(app) {
        Some(name) => format!(
            r#"<form class="who" method="post" action="/ui/logout"><span title="signed in">{}</span>{}<button type="submit" class="link">Sign out</button></form>"#,
            esc(&name),
            session::csrf_field(app, parts)
        ),
        None => String::new(),
    };
    let live_attr = if live { r#" data-live="1""# } else { "" };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · statelock</title>
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
</head>
<body{live_attr}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/ui/">statelock</a>
<nav aria-label="Main">{states}{locks}{audit}</nav>
<span class="live-status" id="live-status" role="status" aria-live="polite"></span>
{who}
</header>
<main id="main" tabindex="-1">
{main}
</main>
</body>
</html>
"##,
        title = esc(title),
        css = assets::CSS_PATH,
        js = assets::JS_PATH,
        states = link("/ui/", "States", Nav::States),
        locks = link("/ui/locks", "Locks", Nav::Locks),
        audit = link("/ui/audit", "Audit", Nav::Audit),
    )
}

/// The headers every UI page carries: no caching of state data, no framing (the confirmation
/// pages must not be clickjacked), only the UI's own script and styles.
pub fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CACHE_CONTROL, "no-store");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
}

/// An HTML response with `status`.
pub fn respond(status: StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    secure_headers(&mut response);
    response
}

/// The page for a refusal or failure: what happened, and where to go from here.
pub fn error_page(app: &AppState, parts: &Parts, e: UiError) -> Response {
    let main = format!(
        r#"<h1>{status}</h1>
<p class="error" role="alert">{message}</p>
<p><a href="/ui/">Back to the states</a></p>"#,
        status = esc(&e.status.to_string()),
        message = esc(&e.message),
    );
    respond(e.status, page(app, parts, "Error", Nav::None, false, &main))
}

/// `<time>` with the age ("3 min ago") as text and the exact UTC time on hover; the script
/// keeps the age current.
pub fn time(at: Timestamp, now: Timestamp) -> String {
    let exact = at.to_rfc3339();
    format!(
        r#"<time datetime="{exact}" title="{exact}" data-rel>{}</time>"#,
        esc(&ago(at.age_at(now)))
    )
}

/// [`time`] for an RFC 3339 text, shown as is when it does not parse.
pub fn time_text(text: &str, now: Timestamp) -> String {
    match Timestamp::parse_rfc3339(text) {
        Ok(at) => time(at, now),
        Err(_) => esc(text),
    }
}

/// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(age: Duration) -> String {
    if age.as_secs() == 0 {
        return "just now".to_owned();
    }
    format!("{} ago", span(age))
}

/// A duration in its largest unit: "42 s", "5 min", "3 h 10 min", "2 d".
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 if (s % 3600) / 60 > 0 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

/// Bytes as "812 B", "14.2 KiB", "3.1 MiB".
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / KIB / KIB)
    }
}

/// Terraform's operation names without the `OperationType` prefix.
pub fn operation(op: &str) -> &str {
    op.strip_prefix("OperationType").unwrap_or(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_markup_could_use() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(Duration::from_millis(300)), "just now");
        assert_eq!(ago(Duration::from_secs(42)), "42 s ago");
        assert_eq!(ago(Duration::from_secs(10)), "10 s ago");
        assert_eq!(ago(Duration::from_secs(310)), "5 min ago");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 600)), "3 h 10 min");
        assert_eq!(span(Duration::from_secs(7200)), "2 h");
        assert_eq!(span(Duration::from_secs(3 * 86400)), "3 d");
        assert_eq!(size(812), "812 B");
        assert_eq!(size(14 * 1024 + 200), "14.2 KiB");
    }
}

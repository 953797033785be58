//! The stylesheet and the script, compiled into the binary (`include_str!`), so the UI
//! needs nothing from the network: no CDN, no build step, no Node at run time.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the assets are served.
pub const ASSETS_PREFIX: &str = "/ui/assets/";
pub const CSS_PATH: &str = "/ui/assets/ui.css";
pub const JS_PATH: &str = "/ui/assets/ui.js";

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// `GET /ui/assets/<name>` (`page` is the path after `/ui/`).
pub fn serve(page: &str) -> Response {
    let (body, kind) = match page.strip_prefix("assets/") {
        Some("ui.css") => (CSS, "text/css; charset=utf-8"),
        Some("ui.js") => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    // Short caching: a new binary may bring new assets under the same name.
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

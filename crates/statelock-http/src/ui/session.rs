//! Sessions and cross-site protection for the UI.
//!
//! With principals, the UI asks for a token once (`/ui/login`) and then keeps a session in
//! a cookie: `v1.<principal, base64url>.<expiry, unix seconds>.<HMAC-SHA256>`, the MAC over
//! the principal, the expiry and the digest of the token it was opened with, under a key
//! this process draws at start-up. The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/ui/`,
//! `Secure` when served over TLS, and expires after [`SESSION_LIFETIME`] (in the browser and,
//! by the signed expiry, on the server). Removing the token (or the principal) from the
//! principals file and reloading ends the session; so does a restart. Nothing is stored on
//! the server: the cookie proves itself. A cookie only counts on `/ui/` paths; the API and
//! the `http` backend never accept it.
//!
//! Every state-changing UI request is a POST that must pass [`check_post`]: the browser's
//! `Sec-Fetch-Site` (when sent) must be `same-origin`, the `Origin` (when sent) must be this
//! server's, and the form must carry the CSRF token, an HMAC of the session (or, without
//! principals, of the process key alone), which a page on another site cannot read. Without
//! principals (a loopback server) there is no login, as for the API, but the same checks
//! hold, so a web page cannot make the browser unlock a local server's states.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use statelock_auth::{Principal, Principals};

use super::forms::{Form, encode};
use super::html::{self, Nav, attr, esc};
use super::{UI_ROOT, UiError, UiResult};
use crate::app::AppState;

/// The login page.
pub const LOGIN_PATH: &str = "/ui/login";

const COOKIE: &str = "statelock_session";

/// How long a session lasts: a working day.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The form field carrying the CSRF token.
const CSRF_FIELD: &str = "csrf";

type HmacSha256 = Hmac<Sha256>;

/// The process's key for session MACs and CSRF tokens, drawn at start-up.
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<secret>)")
    }
}

impl SessionKey {
    pub fn generate() -> SessionKey {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source works");
        SessionKey(key)
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for part in parts {
            // Length-prefixed, so no two different part lists hash alike.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// The cookie value for `principal`, opened with the token whose digest is `digest`.
fn issue(key: &SessionKey, principal: &str, digest: &[u8; 32], expiry: u64) -> String {
    let expiry_text = expiry.to_string();
    let mac = key.mac(&[
        b"session",
        principal.as_bytes(),
        expiry_text.as_bytes(),
        digest,
    ]);
    let tag: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1.{}.{expiry_text}.{tag}", b64().encode(principal))
}

/// The principal a session cookie value stands for, if it is valid now.
fn verify(
    key: &SessionKey,
    principals: &Principals,
    value: &str,
    now: u64,
) -> Option<Arc<Principal>> {
    let mut fields = value.split('.');
    let (Some("v1"), Some(name), Some(expiry_text), Some(tag), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return None;
    };
    let name = String::from_utf8(b64().decode(name).ok()?).ok()?;
    let expiry: u64 = expiry_text.parse().ok()?;
    if expiry <= now {
        return None;
    }
    let tag: Vec<u8> = (0..tag.len())
        .step_by(2)
        .map(|i| {
            tag.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    let principal = principals.get(&name)?;
    // Constant-time comparison per token; a principal has a handful at most.
    principal
        .token_digests()
        .iter()
        .any(|digest| {
            key.mac(&[
                b"session",
                name.as_bytes(),
                expiry_text.as_bytes(),
                &digest.0,
            ])
            .verify_slice(&tag)
            .is_ok()
        })
        .then(|| Arc::clone(principal))
}

/// The session cookie's value in `headers`, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// For the authentication middleware: the principal a UI request's session cookie proves.
pub fn principal(
    app: &AppState,
    principals: &Principals,
    headers: &HeaderMap,
) -> Option<Arc<Principal>> {
    verify(&app.ui().session, principals, cookie(headers)?, now_secs())
}

/// For the authentication middleware: a UI request without a valid session goes to the
/// login page, and comes back to where it was going afterwards.
pub fn login_redirect(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or(UI_ROOT, |p| p.as_str());
    let location = format!("{LOGIN_PATH}?next={}", encode(next));
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location)],
        Body::empty(),
    )
        .into_response()
}

/// The signed-in principal's name, when the server has principals.
pub fn signed_in(app: &AppState) -> Option<String> {
    app.config().auth.as_ref()?;
    crate::auth::current()?.principal.map(|p| p.name.clone())
}

/// The CSRF token for this request's session.
fn csrf_token(app: &AppState, parts: &Parts) -> String {
    let principal = crate::auth::current()
        .and_then(|c| c.principal)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let session = cookie(&parts.headers).unwrap_or("");
    app.ui()
        .session
        .mac(&[b"csrf", principal.as_bytes(), session.as_bytes()])
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hidden form field every POST form carries.
pub fn csrf_field(app: &AppState, parts: &Parts) -> String {
    format!(
        r#"<input type="hidden" name="{CSRF_FIELD}" value="{}">"#,
        csrf_token(app, parts)
    )
}

/// The origin this request was sent to, as a browser writes it in `Origin`.
fn own_origin(app: &AppState, parts: &Parts) -> Option<String> {
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if app.config().tls { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// Refuses a POST that did not come from this UI's own pages: another site's form or
/// script (cross-site request forgery). Checked before the body means anything else.
pub fn check_post(
    app: &AppState,
    parts: &Parts,
    form: &Form,
    with_token: bool,
) -> Result<(), UiError> {
    let refuse = |why: &str| {
        let message = format!("cross-site request refused: {why}; nothing was changed");
        let target = format!("{} {}", parts.method, parts.uri.path());
        crate::audit::denied(app, None, 403, &message, Some(target));
        Err(UiError::new(StatusCode::FORBIDDEN, message))
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && site != "same-origin"
    {
        return refuse(&format!(
            "the browser says the request came from a {site} page"
        ));
    }
    if let Some(origin) = header("origin")
        && Some(origin) != own_origin(app, parts).as_deref()
    {
        return refuse(&format!(
            "the request came from {origin}, not from this server"
        ));
    }
    if !with_token {
        return Ok(());
    }
    let expected = csrf_token(app, parts);
    let sent = form.get(CSRF_FIELD).unwrap_or("");
    let same: bool = subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected.as_bytes()).into();
    if !same {
        return refuse(
            "the form's CSRF token is missing or does not belong to this session (reload the page and try again)",
        );
    }
    Ok(())
}

/// `GET /ui/login`: the form, with `error` when the last try failed.
pub fn login_form(app: &AppState, parts: &Parts, error: Option<&str>) -> UiResult {
    let query = Form::query(parts)?;
    form_page(app, parts, query.get("next"), error)
}

/// The login form, going on to `next` after signing in.
fn form_page(app: &AppState, parts: &Parts, next: Option<&str>, error: Option<&str>) -> UiResult {
    let next = safe_next(next);
    if app.config().auth.is_none() {
        return Ok(super::see_other(&next));
    }
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let main = format!(
        r#"<h1>Sign in</h1>
<p>This server has principals. Sign in with a token from <code>statelock token create</code>; the
session lasts {hours} hours and ends when the token is removed from the principals file.</p>
{error}
<form class="login" method="post" action="{LOGIN_PATH}">
<input type="hidden" name="next" value="{next}">
<label>Principal <span class="hint">(optional: the token names it)</span>
<input name="principal" autocomplete="username" autocapitalize="off" spellcheck="false"></label>
<label>Token
<input name="token" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button>
</form>"#,
        hours = SESSION_LIFETIME.as_secs() / 3600,
        next = attr(&next),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    Ok(html::respond(
        status,
        html::page(app, parts, "Sign in", Nav::None, false, &main),
    ))
}

/// `POST /ui/login`: checks the token, sets the session cookie, goes on to `next`.
pub async fn login(app: &AppState, parts: &Parts, body: Body) -> UiResult {
    let form = Form::body(parts, body).await?;
    // No session yet, so no token to check; the origin checks still stop login forgery.
    check_post(app, parts, &form, false)?;
    let Some(auth) = app.config().auth.as_deref() else {
        return Ok(super::see_other(UI_ROOT));
    };
    let principals = auth.current();
    let token = form.get("token").unwrap_or("");
    let found = match form.non_empty("principal") {
        Some(name) => principals.check_basic(name, token),
        None => principals.check_bearer(token),
    };
    let Some(principal) = found.filter(|_| !token.is_empty()) else {
        let reason = "unknown principal or wrong token";
        crate::audit::denied(app, None, 401, reason, Some("POST /ui/login".to_owned()));
        let error = format!("{reason}; nothing was signed in");
        return form_page(app, parts, form.get("next"), Some(&error));
    };
    let digest = statelock_auth::TokenHash::of(token);
    let expiry = now_secs() + SESSION_LIFETIME.as_secs();
    let value = issue(&app.ui().session, &principal.name, &digest.0, expiry);
    tracing::info!(principal = %principal.name, "UI session opened");
    let next = safe_next(form.get("next"));
    let mut response = super::see_other(&next);
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(app, &value, SESSION_LIFETIME),
    );
    Ok(response)
}

/// `POST /ui/logout`: clears the cookie.
pub async fn logout(app: &AppState, parts: &Parts, body: Body) -> UiResult {
    let form = Form::body(parts, body).await?;
    check_post(app, parts, &form, true)?;
    let mut response = super::see_other(LOGIN_PATH);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(app, "", Duration::ZERO));
    Ok(response)
}

fn set_cookie(app: &AppState, value: &str, lifetime: Duration) -> HeaderValue {
    let secure = if app.config().tls { "; Secure" } else { "" };
    let text = format!(
        "{COOKIE}={value}; Path={UI_ROOT}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        lifetime.as_secs()
    );
    HeaderValue::from_str(&text).expect("cookie values are ASCII")
}

/// Where to go after signing in: only pages of this UI, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with(UI_ROOT) && !n.contains('\\') => n.to_owned(),
        _ => UI_ROOT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principals() -> (Principals, String) {
        let token = "slt_0123456789abcdef0123456789abcdef";
        let digest = statelock_auth::TokenHash::of(token).to_hex();
        let text = format!(
            "[[principal]]\nname = \"ops\"\ngrants = [\"admin:**\"]\n[[token]]\nprincipal = \"ops\"\nsha256 = \"{digest}\"\n"
        );
        (Principals::parse(&text).unwrap(), token.to_owned())
    }

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_with_its_token_and_key() {
        let (principals, token) = principals();
        let key = SessionKey::generate();
        let digest = statelock_auth::TokenHash::of(&token).0;
        let value = issue(&key, "ops", &digest, 1000);
        assert_eq!(verify(&key, &principals, &value, 999).unwrap().name, "ops");
        assert!(verify(&key, &principals, &value, 1000).is_none(), "expired");
        assert!(
            verify(&SessionKey::generate(), &principals, &value, 999).is_none(),
            "another process's key"
        );
        let longer = value.replace(".1000.", ".2000.");
        assert!(
            verify(&key, &principals, &longer, 999).is_none(),
            "expiry is signed"
        );
        let other = issue(&key, "ops", &[7; 32], 1000);
        assert!(
            verify(&key, &principals, &other, 999).is_none(),
            "a token the principal no longer has"
        );
        assert!(verify(&key, &Principals::default(), &value, 999).is_none());
        assert!(verify(&key, &principals, "v1.x.y", 0).is_none());
    }

    #[test]
    fn the_cookie_is_found_among_others_and_next_stays_on_the_ui() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; statelock_session=v1.abc; b=2"),
        );
        assert_eq!(cookie(&headers), Some("v1.abc"));
        assert_eq!(safe_next(Some("/ui/locks?x=1")), "/ui/locks?x=1");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui/")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }
}

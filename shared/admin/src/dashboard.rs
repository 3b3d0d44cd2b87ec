//! The dashboard page and its script, compiled into the binary (no build step, no CDN).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page (`GET /admin/dashboard`).
pub const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");
/// Its script (`GET /admin/dashboard.js`).
pub const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");

/// Only this origin's script and API; inline styles for the SVG charts. The token can arrive in
/// the page URL, so no Referer may carry it elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

pub(crate) async fn page() -> Response {
    let mut resp = asset(DASHBOARD_HTML, "text/html; charset=utf-8");
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

pub(crate) async fn script() -> Response {
    asset(DASHBOARD_JS, "text/javascript; charset=utf-8")
}

//! The dashboard page and script: served without auth, with the right types, self-contained.

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(path: &str) -> (StatusCode, http::HeaderMap, String) {
    let resp = admin::dashboard_router()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn page_is_html_without_auth_and_loads_only_its_own_script() {
    let (s, h, html) = get("/admin/dashboard").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert!(html.contains(r#"<script src="dashboard.js"></script>"#));
    assert_eq!(
        html.matches("<script").count(),
        1,
        "no inline or external scripts"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resources"
    );
    for w in ["5m", "15m", "60m", "24h"] {
        for p in ["p50", "p95", "p99"] {
            assert!(
                html.contains(&format!(r#"data-testid="latency-{p}-{w}""#)),
                "{p} {w}"
            );
        }
        for f in ["throughput", "error-rate", "cache-hit"] {
            assert!(
                html.contains(&format!(r#"data-testid="{f}-{w}""#)),
                "{f} {w}"
            );
        }
    }
    for id in [
        "queues-table",
        "alerts",
        "depth-chart",
        "latency-chart",
        "token-input",
    ] {
        assert!(html.contains(&format!(r#"data-testid="{id}""#)), "{id}");
    }
}

#[tokio::test]
async fn script_is_javascript_and_calls_the_admin_api_relative_to_the_page() {
    let (s, h, js) = get("/admin/dashboard.js").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(js.contains(r#"new URL("../api/admin/", location.href)"#));
    assert!(js.contains(r#"api("performance")"#) && js.contains(r#"api("queues")"#));
    assert!(js.contains(r#""queue-row-" + q.queue"#));
    assert!(
        !js.contains("innerHTML"),
        "API values are written as text only"
    );
    // The only absolute URL is the SVG namespace (a name, never fetched).
    assert_eq!(js.matches("http://").count(), 1);
    assert!(js.contains(r#""http://www.w3.org/2000/svg""#));
    assert!(!js.contains("https://"), "no external resources");
}

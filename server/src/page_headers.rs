//! The response headers every HTML page of ours carries, the console's and
//! the client's license page alike: a Content-Security-Policy of the
//! caller's, never framed (`X-Frame-Options: DENY`, beside the policy's
//! `frame-ancestors`), never sniffed as another type, no `Referer` sent
//! onwards, and not kept by caches unless a route says otherwise.

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// `router` with those headers on every response, its
/// `Content-Security-Policy` being `policy`.
pub fn add<S>(router: Router<S>, policy: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn every_response_carries_the_headers_and_a_route_may_keep_its_own_cache_control() {
        let router = Router::new().route("/", get(|| async { "page" })).route(
            "/style.css",
            get(|| async { ([(header::CACHE_CONTROL, "max-age=3600")], "css") }),
        );
        let router = add(router, "default-src 'none'");
        for (path, cache) in [("/", "no-store"), ("/style.css", "max-age=3600")] {
            let request = Request::get(path).body(Body::empty()).unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let headers = response.headers();
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                "default-src 'none'"
            );
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(headers[header::CACHE_CONTROL], cache, "{path}");
        }
    }
}

//! One span per request: method, route template, request id; status and latency recorded at the
//! end. The raw URI is never logged, because it can carry redirect URLs and tokens in queries.

use crate::error::ErrorDetail;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::{Span, error, field, info_span};

/// Request ids: a per-process counter, enough to tie a request's log lines together.
#[derive(Clone, Default)]
pub(crate) struct CountingIds(std::sync::Arc<AtomicU64>);

impl MakeRequestId for CountingIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&n.to_string()).ok().map(RequestId::new)
    }
}

pub(crate) fn make_span(req: &Request) -> Span {
    let route = req.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str);
    let request_id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    info_span!("request", method = %req.method(), route, request_id, status = field::Empty, latency_ms = field::Empty)
}

pub(crate) fn on_response<B>(response: &Response<B>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency.as_millis() as u64);
    if let Some(ErrorDetail(e)) = response.extensions().get::<ErrorDetail>() {
        error!(error = %e, source = ?std::error::Error::source(e.as_ref()), "request failed");
    }
}

//! HTTP routes and middleware. Handlers stay thin over the `wecom`, `inbox` and `db` layers; errors
//! are mapped to responses in [`error`].

pub mod api;
mod callback;
pub mod error;
mod health;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use sea_orm::DatabaseConnection;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::cache::Cache;
use crate::config::Config;
use crate::inbox::InboxWriter;
use crate::services::Services;
use crate::wecom::crypto::WecomCrypto;

/// WeCom callbacks are a few hundred bytes; anything near this is not WeCom.
pub const CALLBACK_BODY_LIMIT: usize = 64 * 1024;

/// Everything a request handler needs, built once at start-up.
pub struct AppContext {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub crypto: WecomCrypto,
    pub inbox: InboxWriter,
    pub services: Arc<Services>,
}

#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl AppState {
    pub fn new(context: AppContext) -> Self {
        Self(Arc::new(context))
    }
}

impl Deref for AppState {
    type Target = AppContext;
    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// The service's routes, with `pages` (the web pages, built above this layer) merged in under the
/// same middleware.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let timeout = state.config.request_timeout();
    Router::new()
        .route("/wecom/callback", get(callback::verify_url).post(callback::receive))
        .layer(DefaultBodyLimit::max(CALLBACK_BODY_LIMIT))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api::router())
        .merge(pages)
        .with_state(state)
        // Layers run outermost-last-added: request id → trace span → … → handler.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
}

/// The span of one request: its id, method and matched route — never the raw URI, whose query
/// carries signatures and `echostr`.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id = %request_id, method = %request.method(), path = %path)
}

/// Request ids: a per-process random prefix and a counter — unique, short and cheap.
#[derive(Clone)]
struct RequestIds {
    prefix: u32,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: rand::random(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:06}", self.prefix).parse().ok().map(RequestId::new)
    }
}

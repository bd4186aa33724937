//! The admin REST API under `/api/v1`: bearer tokens (see [`crate::tokens`]), JSON in and out,
//! problem details for every error, and an OpenAPI document generated from the handlers
//! themselves at `/api/v1/openapi.json`.

mod channels;
mod customers;
mod deals;
pub mod extract;
mod org;
mod pool;
pub mod problem;
mod records;
mod transfer;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use problem::Problem;

/// JSON bodies are small; CSV imports have their own, larger limit.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wecom-scrm admin API",
        description = "Customers, follow-ups, reminders, deals and the forecast, the lead pool and its rules, the org, channels, stages and the audit log \
                       of wecom-scrm. Every request carries `Authorization: Bearer <token>` \
                       (`wecom-scrm token create`). Errors are problem details (RFC 9457)."
    ),
    servers((url = "/api/v1")),
    components(schemas(problem::ProblemDocument, problem::FieldError)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The handlers and the document describing them, from one list.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(customers::list))
        .routes(routes!(customers::get))
        .routes(routes!(org::members))
        .routes(routes!(org::departments))
        .routes(routes!(records::follow_ups))
        .routes(routes!(records::reminders))
        .routes(routes!(records::audit))
        .routes(routes!(records::stages, records::replace_stages))
        .routes(routes!(transfer::export_customers))
        .routes(routes!(transfer::import_customers))
        .routes(routes!(channels::list, channels::create))
        .routes(routes!(channels::get, channels::replace, channels::delete))
        .routes(routes!(deals::list))
        .routes(routes!(deals::get, deals::update))
        .routes(routes!(deals::get_forecast))
        .routes(routes!(deals::set_target))
        .routes(routes!(pool::list, pool::put))
        .routes(routes!(pool::assign))
        .routes(routes!(pool::get_rules, pool::replace_rules))
        .split_for_parts()
}

/// The OpenAPI document of the admin API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    let (routes, document) = api();
    let document = std::sync::Arc::new(document);
    routes
        .route(
            "/openapi.json",
            get(move || async move { Json(document.as_ref().clone()) }),
        )
        .fallback(|| async { Problem::NotFound("resource") })
        .method_not_allowed_fallback(|| async { Problem::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

/// Page sizes: `limit` from 1 to this, 50 when not given.
const MAX_LIMIT: i64 = 500;
const DEFAULT_LIMIT: i64 = 50;

/// A page from `limit + 1` rows: the first `limit`, and the cursor after the last of them when
/// there was more.
fn paginate<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = more
        .then(|| rows.last().map(|row| extract::encode_cursor(id(row))))
        .flatten();
    (rows, next)
}

/// An instant as RFC 3339 in the org's time zone.
fn time(ms: i64, tz: chrono_tz::Tz) -> String {
    crate::bot::time::rfc3339(&crate::texts::local(ms, tz))
}

//! `/api/v1/export/customers.csv` and `/api/v1/import/customers`: customers out as CSV, streamed
//! a page at a time (constant memory however many there are), and leads in from CSV with a report
//! of every row left out.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::customers::{FILTER_PARAMETERS, customer_filter};
use super::extract::{Auth, Params, has_media_type};
use super::problem::responses::{Invalid, OutOfScope, Unauthorized};
use super::problem::{Problem, ProblemDocument};
use crate::crm::export;
use crate::crm::listing::{self, CustomerFilter, Scope};
use crate::crm::risk::Risk;
use crate::crm::transfer::{self, ImportError, ImportReport};
use crate::db::now_ms;
use crate::http::AppState;

/// Customers read per query while exporting.
const EXPORT_PAGE: u64 = 1000;
/// A trade fair's business cards are a few hundred KiB; this leaves ample room.
pub const IMPORT_BODY_LIMIT: usize = 20 * 1024 * 1024;

/// Export customers as CSV
///
/// Every customer the token may see, with the list's filters, as CSV (UTF-8 with a BOM so that
/// Excel shows Chinese correctly). The file is written as it is read.
#[utoipa::path(
    get,
    path = "/export/customers.csv",
    operation_id = "exportCustomers",
    tag = "import/export",
    params(
        ("owner" = Option<String>, Query, description = "owned by this member (userid)"),
        ("department" = Option<i64>, Query, description = "owned by a member of this department or one under it"),
        ("stage" = Option<String>, Query, description = "deal stage"),
        ("status" = Option<String>, Query, description = "lead status"),
        ("rating" = Option<String>, Query, description = "A, B or C"),
        ("tag" = Option<String>, Query, description = "carries this tag"),
        ("channel" = Option<String>, Query, description = "came through this channel"),
        ("at_risk" = Option<bool>, Query, description = "at risk"),
        ("updated_since" = Option<String>, Query, description = "changed at or after this RFC 3339 time"),
    ),
    responses(
        (status = 200, content_type = "text/csv", body = String, description = "the customers, one per line"),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn export_customers(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let params = Params::parse(raw.as_deref(), &FILTER_PARAMETERS);
    let filter = customer_filter(&params);
    params.finish()?;
    auth.require_member_in_scope("owner", filter.owner.as_deref())?;
    auth.require_department_in_scope(&state.db, filter.department).await?;
    // Fail before the first byte when the database is away, rather than with a cut-off file.
    let risk = Risk::current(&state.db, &state.config, now_ms()).await?;
    let first = listing::customers(&state.db, &auth.scope, &filter, &risk, None, EXPORT_PAGE).await?;
    let body = Body::from_stream(pages(state, auth.scope, filter, risk, first));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"customers.csv\""),
    );
    Ok(response)
}

/// The export as chunks: the header, then one chunk per page of customers.
fn pages(
    state: AppState,
    scope: Scope,
    filter: CustomerFilter,
    risk: Risk,
    first: Vec<crate::db::entity::customer::Model>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    enum Next {
        Header(Vec<crate::db::entity::customer::Model>),
        Page(Vec<crate::db::entity::customer::Model>),
        Fetch(i64),
        Done,
    }
    let tz = state.config.org.tz();
    stream::unfold(Next::Header(first), move |next| {
        let (state, scope, filter, risk) = (state.clone(), scope.clone(), filter.clone(), risk.clone());
        async move {
            let rows = match next {
                Next::Done => return None,
                Next::Header(first) => return Some((Ok(export::export_header()), Next::Page(first))),
                Next::Page(rows) => rows,
                Next::Fetch(after) => {
                    match listing::customers(&state.db, &scope, &filter, &risk, Some(after), EXPORT_PAGE).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::error!(error = %e, "customer export cut short by the database");
                            return Some((Err(std::io::Error::other(e.to_string())), Next::Done));
                        }
                    }
                }
            };
            let after = match rows.last() {
                Some(last) if rows.len() as u64 == EXPORT_PAGE => Next::Fetch(last.id),
                Some(_) => Next::Done,
                None => return None,
            };
            let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
            let totals = match export::deal_totals(&state.db, &ids).await {
                Ok(totals) => totals,
                Err(e) => {
                    tracing::error!(error = %e, "customer export cut short by the database");
                    return Some((Err(std::io::Error::other(e.to_string())), Next::Done));
                }
            };
            Some((Ok(export::export_rows(&rows, &risk, &totals, tz)), after))
        }
    })
}

/// Import leads from CSV
///
/// A CSV file (UTF-8; a BOM is fine) with a header line naming at least 姓名/name and
/// 负责人/owner, and any of 公司/company, 职位/position, 电话/phone, 渠道/channel, 客户ID. Each
/// row is checked on its own: rows at fault are reported with the reason and left out, the rest
/// create a customer or update the one they match (by 客户ID, else the phone, else name and
/// company) — importing the same file twice changes nothing. A channel with a follow-up plan
/// starts the plan for the new leads.
#[utoipa::path(
    post,
    path = "/import/customers",
    operation_id = "importCustomers",
    tag = "import/export",
    request_body(content = String, content_type = "text/csv", description = "the leads, one per line"),
    responses(
        (status = 200, description = "OK", body = ImportReport),
        Unauthorized,
        (status = 413, description = "the body is too large", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "the body has the wrong content type", body = ProblemDocument, content_type = "application/problem+json"),
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn import_customers(
    State(state): State<AppState>,
    auth: Auth,
    request: Request,
) -> Result<Json<ImportReport>, Problem> {
    let csv_types = ["text/csv", "application/csv", "text/plain", "application/octet-stream"];
    if !csv_types.iter().any(|t| has_media_type(request.headers(), t)) {
        return Err(Problem::UnsupportedMediaType(
            "the CSV file itself, as text/csv (e.g. curl -H 'Content-Type: text/csv' --data-binary @cards.csv)",
        ));
    }
    let file = axum::body::to_bytes(request.into_body(), IMPORT_BODY_LIMIT)
        .await
        .map_err(|_| Problem::TooLarge(IMPORT_BODY_LIMIT))?;
    let report = transfer::import_customers(
        &state.db,
        &auth.scope,
        &auth.actor(),
        &state.config,
        &file,
        now_ms(),
        &mut |_, _| {},
    )
    .await
    .map_err(|e| {
        let message = e.to_string();
        match e {
            ImportError::Db(e) => Problem::Database(e),
            ImportError::MissingColumn(column, _) => Problem::invalid(column, message),
            ImportError::Unreadable(_) => Problem::invalid("", message),
        }
    })?;
    Ok(Json(report))
}

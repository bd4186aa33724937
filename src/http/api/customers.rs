//! `/api/v1/customers`: the customer list with filters and cursor pages, and one customer with
//! followers, follow-ups and reminders.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{Auth, Params};
use super::problem::Problem;
use super::problem::responses::{Invalid, NotFound, OutOfScope, Unauthorized};
use super::{DEFAULT_LIMIT, MAX_LIMIT, paginate, time};
use crate::crm::deals;
use crate::crm::listing::{self, CustomerFilter};
use crate::crm::risk::Risk;
use crate::crm::score::Segment;
use crate::db::entity::{customer, follow_up, follower, reminder};
use crate::db::now_ms;
use crate::http::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: i64,
    /// WeCom's external_userid.
    pub external_userid: String,
    pub name: String,
    pub corp_name: String,
    pub position: String,
    /// The rep responsible (userid).
    pub owner: Option<String>,
    pub stage: Option<String>,
    /// Lead status: hot, interested, qualified, …
    pub status: Option<String>,
    /// A, B or C.
    pub rating: Option<String>,
    pub tags: Vec<String>,
    /// The lead channel (the state of the QR code of the first add).
    pub channel: Option<String>,
    pub at_risk: bool,
    pub at_risk_reason: Option<String>,
    /// The behaviour score (0–100 with the default weights; `评分` in chat explains it).
    pub score: i32,
    /// important (重要), main (主要), normal (一般) or at_risk (风险); absent until first scored.
    pub segment: Option<String>,
    /// In the lead pool (公海) since then; absent when not in the pool.
    pub pooled_at: Option<String>,
    /// Why it went to the pool.
    pub pool_reason: Option<String>,
    /// Who owned it before the pool.
    pub previous_owner: Option<String>,
    pub last_follow_up_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<Customer>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Follower {
    pub userid: String,
    /// The member's remark for the customer.
    pub remark: String,
    pub description: String,
    /// The QR code state they were added through.
    pub state: String,
    pub added_at: Option<String>,
    /// When the relation ended; absent while it lasts.
    pub removed_at: Option<String>,
    /// `customer` (the customer deleted the member) or `member`.
    pub removed_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUp {
    pub id: i64,
    pub customer_id: i64,
    pub author: String,
    pub content: String,
    pub kind: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reminder {
    pub id: i64,
    pub customer_id: Option<i64>,
    pub owner: String,
    pub text: String,
    pub due_at: String,
    /// open, done or cancelled.
    pub status: String,
    /// pending, queued, sent or failed.
    pub delivery: String,
    pub last_error: Option<String>,
    pub done_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    pub followers: Vec<Follower>,
    /// The newest 100.
    pub follow_ups: Vec<FollowUp>,
    /// The latest-due 100.
    pub reminders: Vec<Reminder>,
}

impl Customer {
    pub fn from_model(c: customer::Model, risk: &Risk, tz: chrono_tz::Tz) -> Self {
        let at_risk_reason = risk.reason(&c);
        Self {
            tags: deals::tags_of(&c),
            id: c.id,
            external_userid: c.external_userid,
            name: c.name,
            corp_name: c.corp_name,
            position: c.position,
            owner: c.owner_userid,
            stage: c.stage,
            status: c.lead_status,
            rating: c.rating,
            channel: c.first_state.filter(|s| !s.is_empty()),
            at_risk: at_risk_reason.is_some(),
            at_risk_reason,
            score: c.score,
            segment: c.segment,
            pooled_at: c.pooled_at.map(|t| time(t, tz)),
            pool_reason: c.pool_reason,
            previous_owner: c.previous_owner,
            last_follow_up_at: c.last_follow_up_at.map(|t| time(t, tz)),
            created_at: time(c.created_at, tz),
            updated_at: time(c.updated_at, tz),
        }
    }
}

impl FollowUp {
    pub fn from_model(f: follow_up::Model, tz: chrono_tz::Tz) -> Self {
        Self {
            id: f.id,
            customer_id: f.customer_id,
            author: f.author_userid,
            content: f.content,
            kind: f.kind,
            created_at: time(f.created_at, tz),
        }
    }
}

impl Reminder {
    pub fn from_model(r: reminder::Model, tz: chrono_tz::Tz) -> Self {
        Self {
            id: r.id,
            customer_id: r.customer_id,
            owner: r.owner_userid,
            text: r.text,
            due_at: time(r.due_at, tz),
            status: r.status.as_str().to_owned(),
            delivery: r.delivery_state.as_str().to_owned(),
            last_error: r.last_error,
            done_at: r.done_at.map(|t| time(t, tz)),
            created_at: time(r.created_at, tz),
        }
    }
}

fn follower_out(f: follower::Model, tz: chrono_tz::Tz) -> Follower {
    Follower {
        userid: f.userid,
        remark: f.remark,
        description: f.description,
        state: f.state,
        added_at: f.added_at.map(|t| time(t, tz)),
        removed_at: f.removed_at.map(|t| time(t, tz)),
        removed_by: f.removed_by,
    }
}

/// The customer list's filters, shared with the export.
pub const FILTER_PARAMETERS: [&str; 12] = [
    "owner",
    "department",
    "stage",
    "status",
    "rating",
    "tag",
    "channel",
    "at_risk",
    "updated_since",
    "segment",
    "min_score",
    "sort",
];

pub fn customer_filter(params: &Params) -> CustomerFilter {
    CustomerFilter {
        owner: params.text("owner"),
        department: params.int("department", 1..=i64::MAX),
        stage: params.text("stage"),
        status: params.text("status"),
        rating: params.text("rating").map(|r| r.to_uppercase()),
        tag: params.text("tag"),
        channel: params.text("channel"),
        at_risk: params.bool("at_risk"),
        updated_since: params.time("updated_since"),
        segment: params.text("segment").and_then(|text| match Segment::parse(&text) {
            Some(segment) => Some(segment.key().to_owned()),
            None => {
                params.report(
                    "segment",
                    "must be important, main, normal or at_risk (重要, 主要, 一般, 风险)",
                );
                None
            }
        }),
        min_score: params.int("min_score", 0..=1000),
        by_score: params.choice("sort", &["id", "score"]).as_deref() == Some("score"),
    }
}

/// List customers
///
/// The customers the token may see (a manager: those owned or followed by the members of the
/// departments they lead), in id order, a page at a time.
#[utoipa::path(
    get,
    path = "/customers",
    operation_id = "listCustomers",
    tag = "customers",
    params(
        ("owner" = Option<String>, Query, description = "owned by this member (userid)"),
        ("department" = Option<i64>, Query, description = "owned by a member of this department or one under it"),
        ("stage" = Option<String>, Query, description = "deal stage, e.g. 方案报价"),
        ("status" = Option<String>, Query, description = "lead status, e.g. hot"),
        ("rating" = Option<String>, Query, description = "A, B or C"),
        ("tag" = Option<String>, Query, description = "carries this tag"),
        ("channel" = Option<String>, Query, description = "came through this channel (QR code state)"),
        ("at_risk" = Option<bool>, Query, description = "at risk: deleted their rep (or the relation ended), or in an open stage without a follow-up for summary.at_risk_after_days — as in the managers' summary"),
        ("updated_since" = Option<String>, Query, description = "changed at or after this RFC 3339 time"),
        ("segment" = Option<String>, Query, description = "in this segment: important (重要), main (主要), normal (一般) or at_risk (风险)"),
        ("min_score" = Option<i64>, Query, description = "scoring at least this"),
        ("sort" = Option<String>, Query, description = "`id` (default) or `score`: the highest score first"),
        ("limit" = Option<i64>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = CustomerPage),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<CustomerPage>, Problem> {
    let mut accepted = FILTER_PARAMETERS.to_vec();
    accepted.extend(["limit", "cursor"]);
    let params = Params::parse(raw.as_deref(), &accepted);
    let filter = customer_filter(&params);
    let limit = params.int("limit", 1..=MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let after = params.cursor("cursor");
    params.finish()?;
    auth.require_member_in_scope("owner", filter.owner.as_deref())?;
    auth.require_department_in_scope(&state.db, filter.department).await?;
    let risk = Risk::current(&state.db, &state.config, now_ms()).await?;
    // One more than the page tells whether there is a next page.
    let rows = listing::customers(&state.db, &auth.scope, &filter, &risk, after, limit as u64 + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |c| c.id);
    let tz = state.config.org.tz();
    Ok(Json(CustomerPage {
        items: rows.into_iter().map(|c| Customer::from_model(c, &risk, tz)).collect(),
        next_cursor,
    }))
}

/// Get a customer
///
/// One customer with everyone who follows them (and followed them before), their newest
/// follow-ups and reminders. A customer outside the token's scope is not found.
#[utoipa::path(
    get,
    path = "/customers/{id}",
    operation_id = "getCustomer",
    tag = "customers",
    params(("id" = i64, Path, description = "the customer's id")),
    responses(
        (status = 200, description = "OK", body = CustomerDetail),
        Unauthorized,
        NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<CustomerDetail>, Problem> {
    let id: i64 = id.parse().map_err(|_| Problem::NotFound("customer"))?;
    let detail = listing::customer(&state.db, &auth.scope, id)
        .await?
        .ok_or(Problem::NotFound("customer"))?;
    let tz = state.config.org.tz();
    let risk = Risk::current(&state.db, &state.config, now_ms()).await?;
    Ok(Json(CustomerDetail {
        customer: Customer::from_model(detail.customer, &risk, tz),
        followers: detail.followers.into_iter().map(|f| follower_out(f, tz)).collect(),
        follow_ups: detail
            .follow_ups
            .into_iter()
            .map(|f| FollowUp::from_model(f, tz))
            .collect(),
        reminders: detail
            .reminders
            .into_iter()
            .map(|r| Reminder::from_model(r, tz))
            .collect(),
    }))
}

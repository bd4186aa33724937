//! `/api/v1/follow-ups`, `/api/v1/reminders` and `/api/v1/audit`: what the chat recorded, read
//! with filters a page at a time, within the token's scope; and `/api/v1/stages`, the deal stages.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::customers::{FollowUp, Reminder};
use super::extract::{Auth, JsonBody, Params};
use super::problem::Problem;
use super::problem::responses::{AdminOnly, Invalid, OutOfScope, Unauthorized};
use super::{DEFAULT_LIMIT, MAX_LIMIT, paginate, time};
use crate::crm::listing::{self, RecordFilter};
use crate::crm::stages as crm_stages;
use crate::db::{begin_write, now_ms};
use crate::http::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUpPage {
    pub items: Vec<FollowUp>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderPage {
    pub items: Vec<Reminder>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    /// Who acted: a member's userid, `wecom`, `sync`, `system` or `token:NAME`.
    pub actor: String,
    /// What happened, e.g. `deal.stage`, `follow_up.add`, `channel.update`.
    pub action: String,
    pub customer_id: Option<i64>,
    pub member: Option<String>,
    /// The change itself (before and after, or the values written).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stage {
    pub name: String,
    /// 1 for the first stage.
    pub position: usize,
    /// `open`, `won` or `lost`.
    pub kind: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageList {
    pub items: Vec<Stage>,
    /// After a replacement: customers in a stage the new list no longer has (they keep it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customers_in_unlisted_stages: Option<u64>,
}

/// Reads the filters every record list shares; `member` names the list's member parameter.
fn record_filter(params: &Params, member: &str, kind: Option<String>) -> RecordFilter {
    RecordFilter {
        customer: params.int("customer", 1..=i64::MAX),
        member: params.text(member),
        since: params.time("since"),
        until: params.time("until"),
        kind,
    }
}

/// List follow-ups
///
/// Follow-ups on the customers the token may see, newest first.
#[utoipa::path(
    get,
    path = "/follow-ups",
    operation_id = "listFollowUps",
    tag = "records",
    params(
        ("customer" = Option<i64>, Query, description = "on this customer (id)"),
        ("author" = Option<String>, Query, description = "written by this member (userid)"),
        ("since" = Option<String>, Query, description = "written at or after this RFC 3339 time"),
        ("until" = Option<String>, Query, description = "written before this RFC 3339 time"),
        ("limit" = Option<i64>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = FollowUpPage),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn follow_ups(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<FollowUpPage>, Problem> {
    let params = Params::parse(
        raw.as_deref(),
        &["customer", "author", "since", "until", "limit", "cursor"],
    );
    let filter = record_filter(&params, "author", None);
    let limit = params.int("limit", 1..=MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let before = params.cursor("cursor");
    params.finish()?;
    auth.require_member_in_scope("author", filter.member.as_deref())?;
    let rows = listing::follow_ups(&state.db, &auth.scope, &filter, before, limit as u64 + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |f| f.id);
    let tz = state.config.org.tz();
    Ok(Json(FollowUpPage {
        items: rows.into_iter().map(|f| FollowUp::from_model(f, tz)).collect(),
        next_cursor,
    }))
}

/// List reminders
///
/// Reminders of the members the token may see (or on their customers), in the order they were set.
#[utoipa::path(
    get,
    path = "/reminders",
    operation_id = "listReminders",
    tag = "records",
    params(
        ("customer" = Option<i64>, Query, description = "on this customer (id)"),
        ("owner" = Option<String>, Query, description = "for this member (userid)"),
        ("status" = Option<String>, Query, description = "open, done or cancelled"),
        ("since" = Option<String>, Query, description = "due at or after this RFC 3339 time"),
        ("until" = Option<String>, Query, description = "due before this RFC 3339 time"),
        ("limit" = Option<i64>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = ReminderPage),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn reminders(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<ReminderPage>, Problem> {
    let params = Params::parse(
        raw.as_deref(),
        &["customer", "owner", "status", "since", "until", "limit", "cursor"],
    );
    let status = params.choice("status", &["open", "done", "cancelled"]);
    let filter = record_filter(&params, "owner", status);
    let limit = params.int("limit", 1..=MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let after = params.cursor("cursor");
    params.finish()?;
    auth.require_member_in_scope("owner", filter.member.as_deref())?;
    let rows = listing::reminders(&state.db, &auth.scope, &filter, after, limit as u64 + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |r| r.id);
    let tz = state.config.org.tz();
    Ok(Json(ReminderPage {
        items: rows.into_iter().map(|r| Reminder::from_model(r, tz)).collect(),
        next_cursor,
    }))
}

/// Read the audit log
///
/// Every change to a customer, a member or the configuration, with who made it, newest first. A
/// manager sees the entries about their members and their members' customers.
#[utoipa::path(
    get,
    path = "/audit",
    operation_id = "listAuditEntries",
    tag = "records",
    params(
        ("customer" = Option<i64>, Query, description = "about this customer (id)"),
        ("member" = Option<String>, Query, description = "about this member (userid)"),
        ("action" = Option<String>, Query, description = "this action, e.g. deal.stage"),
        ("since" = Option<String>, Query, description = "at or after this RFC 3339 time"),
        ("until" = Option<String>, Query, description = "before this RFC 3339 time"),
        ("limit" = Option<i64>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = AuditPage),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPage>, Problem> {
    let params = Params::parse(
        raw.as_deref(),
        &["customer", "member", "action", "since", "until", "limit", "cursor"],
    );
    let action = params.text("action");
    let filter = record_filter(&params, "member", action);
    let limit = params.int("limit", 1..=MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let before = params.cursor("cursor");
    params.finish()?;
    auth.require_member_in_scope("member", filter.member.as_deref())?;
    let rows = listing::audit_log(&state.db, &auth.scope, &filter, before, limit as u64 + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |a| a.id);
    let tz = state.config.org.tz();
    let items = rows
        .into_iter()
        .map(|a| AuditEntry {
            id: a.id,
            at: time(a.at, tz),
            actor: a.actor,
            action: a.action,
            customer_id: a.customer_id,
            member: a.member_userid,
            detail: serde_json::from_str(&a.detail).unwrap_or(serde_json::Value::String(a.detail)),
        })
        .collect();
    Ok(Json(AuditPage { items, next_cursor }))
}

/// List deal stages
///
/// The stages in order: the last two close a deal, won then lost.
#[utoipa::path(
    get,
    path = "/stages",
    operation_id = "listStages",
    tag = "stages",
    responses(
        (status = 200, description = "OK", body = StageList),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn stages(State(state): State<AppState>, _auth: Auth) -> Result<Json<StageList>, Problem> {
    let stages = crm_stages::current(&state.db, &state.config).await?;
    Ok(Json(stage_list(&stages, None)))
}

/// The stages, in order, that replace the list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StagesInput {
    /// At least one open stage, then won, then lost; 3 to 20, each 1 to 16 characters.
    pub stages: Vec<String>,
}

/// Replace the deal stages
///
/// Customers keep the stage they are in; the answer says how many are now in a stage no longer
/// listed. Chat commands, the summary and stale-lead nudges use the new list at once.
#[utoipa::path(
    put,
    path = "/stages",
    operation_id = "replaceStages",
    tag = "stages",
    request_body = StagesInput,
    responses(
        (status = 200, description = "OK", body = StageList),
        Unauthorized,
        AdminOnly,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn replace_stages(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(input): JsonBody<StagesInput>,
) -> Result<Json<StageList>, Problem> {
    auth.require_admin()?;
    crm_stages::check(&input.stages).map_err(|message| Problem::invalid("/stages", message))?;
    let txn = begin_write(&state.db).await?;
    let stranded = crm_stages::replace(&txn, &state.config, &auth.actor(), &input.stages, now_ms()).await?;
    txn.commit().await?;
    Ok(Json(stage_list(&input.stages, Some(stranded))))
}

fn stage_list(stages: &[String], stranded: Option<u64>) -> StageList {
    let items = stages
        .iter()
        .enumerate()
        .map(|(i, name)| Stage {
            name: name.clone(),
            position: i + 1,
            kind: match stages.len() - i {
                2 => "won",
                1 => "lost",
                _ => "open",
            },
        })
        .collect();
    StageList {
        items,
        customers_in_unlisted_stages: stranded,
    }
}

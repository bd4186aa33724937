//! `/api/v1/pool` and `/api/v1/rules`: the lead pool (公海) — what is in it, putting a lead in,
//! giving one to a rep — and the assignment and pool rules in force. Reading is open to every
//! token (a manager's token sees the pool, which belongs to no team); changing needs an admin
//! token, and every change is audited.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::customers::Customer;
use super::extract::{Auth, JsonBody, Params};
use super::problem::Problem;
use super::problem::responses::{AdminOnly, Invalid, NotFound, Unauthorized};
use super::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::crm::assign;
use crate::crm::pool::{self, LeadRules};
use crate::crm::risk::Risk;
use crate::db::entity::customer;
use crate::db::entity::lead_assignment::LeadAction;
use crate::db::{begin_write, now_ms};
use crate::http::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolPage {
    /// Leads in the pool, the most recently pooled first.
    pub items: Vec<Customer>,
    /// How many leads the pool holds in all.
    pub total: u64,
}

/// List the pool
///
/// Leads owned by no one, the most recently pooled first; `q` matches names, companies, pinyin
/// and phone numbers.
#[utoipa::path(
    get,
    path = "/pool",
    operation_id = "listPool",
    tag = "pool",
    params(
        ("q" = Option<String>, Query, description = "words every listed lead matches"),
        ("limit" = Option<i64>, Query, description = "1 to 500 (default 50)"),
    ),
    responses(
        (status = 200, description = "OK", body = PoolPage),
        Unauthorized,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<PoolPage>, Problem> {
    let params = Params::parse(raw.as_deref(), &["q", "limit"]);
    let q = params.text("q").unwrap_or_default();
    let limit = params.int("limit", 1..=MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    params.finish()?;
    let leads = pool::list(&state.db, &q, limit as u64).await?;
    let total = pool::size(&state.db).await?;
    let risk = Risk::current(&state.db, &state.config, now_ms()).await?;
    let tz = state.config.org.tz();
    Ok(Json(PoolPage {
        items: leads.into_iter().map(|c| Customer::from_model(c, &risk, tz)).collect(),
        total,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolInput {
    /// The customer to put in the pool.
    pub customer_id: i64,
    /// Why (shown to reps in `公海`).
    pub reason: String,
}

/// Put a lead in the pool
///
/// Its owner (if any) loses it; they are not told, and may claim it back after the cooldown.
#[utoipa::path(
    post,
    path = "/pool",
    operation_id = "poolLead",
    tag = "pool",
    request_body = PoolInput,
    responses(
        (status = 200, description = "in the pool", body = Customer),
        Unauthorized,
        AdminOnly,
        NotFound,
        (status = 409, description = "already in the pool", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(input): JsonBody<PoolInput>,
) -> Result<Json<Customer>, Problem> {
    auth.require_admin()?;
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Problem::invalid("/reason", "must be 1 to 200 characters"));
    }
    let txn = begin_write(&state.db).await?;
    let lead = customer::Entity::find_by_id(input.customer_id)
        .one(&txn)
        .await?
        .ok_or(Problem::NotFound("customer"))?;
    if lead.pooled_at.is_some() {
        return Err(Problem::Conflict("the lead is in the pool already".into()));
    }
    let from = lead.owner_userid.clone();
    if !pool::to_pool(
        &txn,
        &auth.actor(),
        &lead,
        from.as_deref(),
        LeadAction::Pooled,
        reason,
        now_ms(),
    )
    .await?
    {
        return Err(Problem::Conflict("the lead changed hands meanwhile; try again".into()));
    }
    let after = customer::Entity::find_by_id(lead.id)
        .one(&txn)
        .await?
        .expect("just pooled");
    txn.commit().await?;
    let risk = Risk::current(&state.db, &state.config, now_ms()).await?;
    Ok(Json(Customer::from_model(after, &risk, state.config.org.tz())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    /// The active member who gets the lead.
    pub userid: String,
}

/// Give a pooled lead to a rep
///
/// The rep is told (a message with the lead, on the next beat of the reminder dispatcher).
#[utoipa::path(
    post,
    path = "/pool/{id}/assign",
    operation_id = "assignLead",
    tag = "pool",
    params(("id" = i64, Path, description = "the customer's id")),
    request_body = AssignInput,
    responses(
        (status = 200, description = "assigned", body = Customer),
        Unauthorized,
        AdminOnly,
        NotFound,
        (status = 409, description = "not in the pool any more", body = super::problem::ProblemDocument, content_type = "application/problem+json"),
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn assign(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<AssignInput>,
) -> Result<Json<Customer>, Problem> {
    auth.require_admin()?;
    let id: i64 = id.parse().map_err(|_| Problem::NotFound("customer"))?;
    let txn = begin_write(&state.db).await?;
    if !crate::crm::members::is_active(&txn, input.userid.trim()).await? {
        return Err(Problem::invalid("/userid", "must be an active member"));
    }
    let lead = customer::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(Problem::NotFound("customer"))?;
    if lead.pooled_at.is_none() || lead.owner_userid.is_some() {
        return Err(Problem::Conflict("the lead is not in the pool".into()));
    }
    let userid = input.userid.trim();
    if !assign::assign(&txn, &auth.actor(), &lead, userid, "manual", "管理员分配", now_ms()).await? {
        return Err(Problem::Conflict("the lead left the pool meanwhile".into()));
    }
    let after = customer::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .expect("just assigned");
    txn.commit().await?;
    let risk = Risk::current(&state.db, &state.config, now_ms()).await?;
    Ok(Json(Customer::from_model(after, &risk, state.config.org.tz())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RulesDocument {
    #[serde(flatten)]
    pub rules: LeadRules,
    /// `config` (the configuration's) or `admin` (replaced through this API).
    pub source: String,
}

/// Get the lead rules
///
/// The assignment rules (who gets leads without an owner, and a departing rep's customers) and
/// the pool's (recycling, caps, cooldown) in force.
#[utoipa::path(
    get,
    path = "/rules",
    operation_id = "getRules",
    tag = "pool",
    responses(
        (status = 200, description = "OK", body = RulesDocument),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn get_rules(State(state): State<AppState>, _auth: Auth) -> Result<Json<RulesDocument>, Problem> {
    let (rules, source) = match pool::stored_rules(&state.db).await? {
        Some(rules) => (rules, "admin"),
        None => (pool::configured_rules(&state.config), "config"),
    };
    Ok(Json(RulesDocument {
        rules,
        source: source.into(),
    }))
}

/// Replace the lead rules
///
/// Holds for every instance from now on, in place of the configuration's `[assignment]` and
/// `[pool]`; audited with the rules before and after.
#[utoipa::path(
    put,
    path = "/rules",
    operation_id = "replaceRules",
    tag = "pool",
    request_body = LeadRules,
    responses(
        (status = 200, description = "OK", body = RulesDocument),
        Unauthorized,
        AdminOnly,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn replace_rules(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(rules): JsonBody<LeadRules>,
) -> Result<Json<RulesDocument>, Problem> {
    auth.require_admin()?;
    if let Err(e) = rules.pool.check() {
        return Err(Problem::invalid("/pool", e));
    }
    let txn = begin_write(&state.db).await?;
    if rules.assignment.department != 0
        && crate::db::entity::department::Entity::find_by_id(rules.assignment.department)
            .one(&txn)
            .await?
            .is_none()
    {
        return Err(Problem::invalid("/assignment/department", "no such department"));
    }
    pool::replace_rules(&txn, &state.config, &auth.actor(), &rules, now_ms()).await?;
    txn.commit().await?;
    Ok(Json(RulesDocument {
        rules,
        source: "admin".into(),
    }))
}

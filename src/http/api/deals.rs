//! `/api/v1/deals`, `/api/v1/deals/{id}`, `/api/v1/forecast` and `/api/v1/targets`: deals with
//! their stage history, the pipeline and weighted forecast, and monthly targets — within the
//! token's scope (a manager's token: the deals their departments' members own). Amounts are CNY in
//! whole fen (`*_fen`), exact.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{Months, NaiveDate};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody, Params};
use super::problem::Problem;
use super::problem::responses::{Invalid, NotFound, OutOfScope, Unauthorized};
use super::{DEFAULT_LIMIT, MAX_LIMIT, paginate, time};
use crate::crm::forecast::{self, Forecast};
use crate::crm::listing::Scope;
use crate::crm::members;
use crate::crm::money::Amount;
use crate::crm::{audit, pipeline, stages as crm_stages};
use crate::db::entity::deal::{self, DealStatus};
use crate::db::{begin_write, now_ms};
use crate::http::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Deal {
    pub id: i64,
    pub customer_id: i64,
    pub owner: String,
    pub title: String,
    /// CNY in whole fen; absent while unknown.
    pub amount_fen: Option<i64>,
    /// `YYYY-MM-DD`.
    pub expected_close: Option<String>,
    pub stage: String,
    /// Percent: the deal's own, else its stage's.
    pub probability: u8,
    /// `open`, `won` or `lost`.
    pub status: &'static str,
    pub loss_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealPage {
    pub items: Vec<Deal>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageMove {
    /// Absent for the stage the deal was made in.
    pub from: Option<String>,
    pub to: String,
    /// Who moved it: a member's userid, `system` or `token:NAME`.
    pub actor: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealWithHistory {
    #[serde(flatten)]
    pub deal: Deal,
    pub history: Vec<StageMove>,
}

/// The forecast as the API answers it: the domain's figures, amounts in fen.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastAnswer {
    /// Whose: `everyone`, `member:USERID` or `department:ID`.
    pub scope: String,
    /// `pipeline` (open deals by stage), `open_deals`, `open_amount_fen`, `months` (for `month` and
    /// the month after: deals, amount_fen, weighted_fen, target_fen, won_fen), `undated` (open
    /// deals without a close date) and `closed` (in `month`: won_deals, won_amount_fen, lost_deals,
    /// win_rate, average_days_to_close).
    #[schema(value_type = Object)]
    pub forecast: Forecast,
}

fn deal_json(d: deal::Model, probability: u8, tz: chrono_tz::Tz) -> Deal {
    Deal {
        id: d.id,
        customer_id: d.customer_id,
        owner: d.owner_userid,
        title: d.title,
        amount_fen: d.amount_fen,
        expected_close: d.expected_close,
        stage: d.stage,
        probability,
        status: d.status.as_str(),
        loss_reason: d.loss_reason,
        created_at: time(d.created_at, tz),
        updated_at: time(d.updated_at, tz),
        closed_at: d.closed_at.map(|t| time(t, tz)),
    }
}

fn date_param(params: &Params, name: &str) -> Option<String> {
    let text = params.text(name)?;
    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        Ok(d) => Some(d.to_string()),
        Err(_) => {
            params.report(name, "must be a date, e.g. 2026-12-31");
            None
        }
    }
}

/// The owners a request's `owner` / `department` filters leave, within the token's scope.
async fn owners(
    state: &AppState,
    auth: &Auth,
    owner: Option<String>,
    department: Option<i64>,
) -> Result<Scope, Problem> {
    auth.require_member_in_scope("owner", owner.as_deref())?;
    auth.require_department_in_scope(&state.db, department).await?;
    let mut scope = auth.scope.clone();
    if let Some(department) = department {
        let tree = members::department_tree(&state.db, &[department]).await?;
        let in_department = members::members_of(&state.db, &tree).await?;
        scope = match scope {
            Scope::All => Scope::Members(in_department),
            Scope::Members(mine) => Scope::Members(mine.into_iter().filter(|m| in_department.contains(m)).collect()),
        };
    }
    if let Some(owner) = owner {
        scope = Scope::Members(vec![owner]);
    }
    Ok(scope)
}

fn owned_by(scope: &Scope) -> Condition {
    match scope {
        Scope::All => Condition::all(),
        Scope::Members(members) => Condition::all().add(deal::Column::OwnerUserid.is_in(members.clone())),
    }
}

/// List deals
///
/// Deals the token may see, newest first.
#[utoipa::path(
    get,
    path = "/deals",
    operation_id = "listDeals",
    tag = "deals",
    params(
        ("owner" = Option<String>, Query, description = "owned by this member (userid)"),
        ("department" = Option<i64>, Query, description = "owned by a member of this department or one under it"),
        ("stage" = Option<String>, Query, description = "in this stage"),
        ("status" = Option<String>, Query, description = "open, won or lost"),
        ("close_from" = Option<String>, Query, description = "expected to close on or after this date (YYYY-MM-DD)"),
        ("close_to" = Option<String>, Query, description = "expected to close on or before this date (YYYY-MM-DD)"),
        ("limit" = Option<i64>, Query, description = "page size, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = DealPage),
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
) -> Result<Json<DealPage>, Problem> {
    let params = Params::parse(
        raw.as_deref(),
        &[
            "owner",
            "department",
            "stage",
            "status",
            "close_from",
            "close_to",
            "limit",
            "cursor",
        ],
    );
    let owner = params.text("owner");
    let department = params.int("department", 1..=i64::MAX);
    let stage = params.text("stage");
    let status = params.choice("status", &["open", "won", "lost"]);
    let (close_from, close_to) = (date_param(&params, "close_from"), date_param(&params, "close_to"));
    let limit = params.int("limit", 1..=MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let before = params.cursor("cursor");
    params.finish()?;
    let scope = owners(&state, &auth, owner, department).await?;
    let mut query = deal::Entity::find().filter(owned_by(&scope));
    if let Some(stage) = stage {
        query = query.filter(deal::Column::Stage.eq(stage));
    }
    if let Some(status) = status {
        let status = match status.as_str() {
            "open" => DealStatus::Open,
            "won" => DealStatus::Won,
            _ => DealStatus::Lost,
        };
        query = query.filter(deal::Column::Status.eq(status));
    }
    if let Some(from) = close_from {
        query = query.filter(deal::Column::ExpectedClose.gte(from));
    }
    if let Some(to) = close_to {
        query = query.filter(deal::Column::ExpectedClose.lte(to));
    }
    if let Some(before) = before {
        query = query.filter(deal::Column::Id.lt(before));
    }
    let rows = query
        .order_by_desc(deal::Column::Id)
        .limit(limit as u64 + 1)
        .all(&state.db)
        .await?;
    let (rows, next_cursor) = paginate(rows, limit, |d| d.id);
    let stages = crm_stages::current(&state.db, &state.config).await?;
    let tz = state.services.tz();
    let items = rows
        .into_iter()
        .map(|d| {
            let p = probability(&state, &stages, &d);
            deal_json(d, p, tz)
        })
        .collect();
    Ok(Json(DealPage { items, next_cursor }))
}

fn probability(state: &AppState, stages: &[String], d: &deal::Model) -> u8 {
    crm_stages::deal_probability(&state.config, stages, &d.stage, d.probability)
}

/// Get a deal
///
/// The deal with every stage move (who, when, from → to).
#[utoipa::path(
    get,
    path = "/deals/{id}",
    operation_id = "getDeal",
    tag = "deals",
    params(("id" = i64, Path, description = "the deal's id")),
    responses(
        (status = 200, description = "OK", body = DealWithHistory),
        Unauthorized,
        NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<DealWithHistory>, Problem> {
    let d = deal::Entity::find_by_id(id)
        .filter(owned_by(&auth.scope))
        .one(&state.db)
        .await?
        .ok_or(Problem::NotFound("deal"))?;
    let tz = state.services.tz();
    let history = pipeline::history(&state.db, d.id)
        .await?
        .into_iter()
        .map(|m| StageMove {
            from: m.from_stage,
            to: m.to_stage,
            actor: m.actor,
            at: time(m.at, tz),
        })
        .collect();
    let stages = crm_stages::current(&state.db, &state.config).await?;
    let p = probability(&state, &stages, &d);
    Ok(Json(DealWithHistory {
        deal: deal_json(d, p, tz),
        history,
    }))
}

/// The pipeline and the forecast
///
/// Open deals by stage, the weighted forecast (amount × win probability) for `month` and the
/// month after against their targets, and what closed in `month`: won, lost, win rate, average days
/// to close. Without `owner` or `department`, everything the token may see.
#[utoipa::path(
    get,
    path = "/forecast",
    operation_id = "getForecast",
    tag = "deals",
    params(
        ("month" = Option<String>, Query, description = "YYYY-MM (default: this month)"),
        ("owner" = Option<String>, Query, description = "one member's (userid)"),
        ("department" = Option<i64>, Query, description = "a department's, with the departments under it"),
    ),
    responses(
        (status = 200, description = "OK", body = ForecastAnswer),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn get_forecast(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<ForecastAnswer>, Problem> {
    let params = Params::parse(raw.as_deref(), &["month", "owner", "department"]);
    let month = params.text("month");
    let owner = params.text("owner");
    let department = params.int("department", 1..=i64::MAX);
    let first = match month.as_deref() {
        Some(m) => forecast::month_start(m).or_else(|| {
            params.report("month", "must be a month, e.g. 2026-12");
            None
        }),
        None => forecast::month_start(&forecast::month_key(crate::texts::local_date(
            now_ms(),
            state.services.tz(),
        ))),
    };
    params.finish()?;
    let first = first.unwrap_or_default();
    let months = [forecast::month_key(first), forecast::month_key(first + Months::new(1))];
    let scope = owners(&state, &auth, owner.clone(), department).await?;
    let (label, target) = match (&owner, department) {
        (Some(o), _) => (format!("member:{o}"), Some(("member".to_owned(), o.clone()))),
        (None, Some(d)) => (
            format!("department:{d}"),
            Some(("department".to_owned(), d.to_string())),
        ),
        (None, None) => ("everyone".to_owned(), None),
    };
    let scope = match scope {
        Scope::All => forecast::Scope::Everyone,
        Scope::Members(m) => forecast::Scope::Members(m),
    };
    let target = target.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
    let f = forecast::forecast(&state.db, &state.config, &scope, &months, target, state.services.tz()).await?;
    Ok(Json(ForecastAnswer {
        scope: label,
        forecast: f,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    pub title: Option<String>,
    /// CNY in whole fen, more than 0; `null` clears it.
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<i64>)]
    pub amount_fen: Option<Option<i64>>,
    /// `YYYY-MM-DD`; `null` clears it.
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<String>)]
    pub expected_close: Option<Option<String>>,
    /// 0–100, overriding the stage's; `null`: the stage's again.
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<u8>)]
    pub probability: Option<Option<u8>>,
    /// Moves the deal (the won or lost stage closes it; an open one reopens it).
    pub stage: Option<String>,
    /// Why it was lost (with the lost stage).
    pub loss_reason: Option<String>,
}

/// Change a deal
///
/// Fields left out stay; every change is in the audit log (`deal.updated`, `deal.stage`) and the
/// stage history. Winning tells the owner's leaders.
#[utoipa::path(
    patch,
    path = "/deals/{id}",
    operation_id = "updateDeal",
    tag = "deals",
    params(("id" = i64, Path, description = "the deal's id")),
    request_body = DealPatch,
    responses(
        (status = 200, description = "OK", body = DealWithHistory),
        Unauthorized,
        NotFound,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    JsonBody(input): JsonBody<DealPatch>,
) -> Result<Json<DealWithHistory>, Problem> {
    let stages = crm_stages::current(&state.db, &state.config).await?;
    let mut errors = Vec::new();
    let title = input.title.map(|t| t.trim().to_owned());
    if title.as_ref().is_some_and(|t| t.is_empty() || t.chars().count() > 60) {
        errors.push(("/title", "1 to 60 characters".to_owned()));
    }
    let amount = match input.amount_fen {
        Some(Some(fen)) if fen <= 0 => {
            errors.push(("/amount_fen", "must be more than 0, or null".to_owned()));
            None
        }
        Some(fen) => Some(fen.map(Amount)),
        None => None,
    };
    let close = match input.expected_close {
        Some(Some(text)) => match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(d) => Some(Some(d)),
            Err(_) => {
                errors.push(("/expected_close", "must be a date, e.g. 2026-12-31, or null".to_owned()));
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    if input.probability.flatten().is_some_and(|p| p > 100) {
        errors.push(("/probability", "must be 0 to 100, or null".to_owned()));
    }
    if let Some(stage) = &input.stage
        && !stages.contains(stage)
    {
        errors.push(("/stage", format!("must be one of {}", stages.join(", "))));
    }
    if input.loss_reason.is_some() && input.stage.as_deref() != Some(pipeline::lost_stage(&stages)) {
        errors.push(("/loss_reason", "only with the lost stage".to_owned()));
    }
    if !errors.is_empty() {
        return Err(Problem::Invalid(
            errors
                .into_iter()
                .map(|(field, message)| super::problem::FieldError {
                    field: field.into(),
                    message,
                })
                .collect(),
        ));
    }
    let d = deal::Entity::find_by_id(id)
        .filter(owned_by(&auth.scope))
        .one(&state.db)
        .await?
        .ok_or(Problem::NotFound("deal"))?;
    let actor = auth.actor();
    let now = now_ms();
    let txn = begin_write(&state.db).await?;
    let changes = pipeline::DealChanges {
        title,
        amount,
        expected_close: close,
        probability: input.probability,
    };
    let mut current = pipeline::update(&txn, &d, changes, &actor, now).await?;
    if let Some(stage) = input.stage.filter(|s| *s != current.stage) {
        let was_won = current.status == DealStatus::Won;
        current = if stage == pipeline::lost_stage(&stages) {
            let reason = input.loss_reason.unwrap_or_default();
            pipeline::lose(&txn, &stages, &current, &reason, &actor, now).await?
        } else {
            pipeline::move_stage(&txn, &stages, &current, &stage, &actor, now).await?
        };
        if !was_won {
            crate::report::pipeline::deal_won(&txn, &current).await?;
        }
    }
    txn.commit().await?;
    state.services.notifier.wake();
    get(State(state), auth, Path(id)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// A member's target (userid) — or give `department`.
    pub member: Option<String>,
    /// A department's target (its id).
    pub department: Option<i64>,
    /// `YYYY-MM`.
    pub month: String,
    /// CNY in whole fen; `null` clears the target.
    pub amount_fen: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Target {
    pub scope: String,
    pub month: String,
    pub amount_fen: Option<i64>,
}

/// Set a monthly target
///
/// The won amount a member or a department aims at in a month; `amount_fen: null` clears it.
/// A manager's token sets targets within the departments its member leads.
#[utoipa::path(
    put,
    path = "/targets",
    operation_id = "setTarget",
    tag = "deals",
    request_body = TargetInput,
    responses(
        (status = 200, description = "OK", body = Target),
        Unauthorized,
        OutOfScope,
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn set_target(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(input): JsonBody<TargetInput>,
) -> Result<Json<Target>, Problem> {
    let (kind, id) = match (&input.member, input.department) {
        (Some(m), None) => ("member", m.trim().to_owned()),
        (None, Some(d)) => ("department", d.to_string()),
        _ => return Err(Problem::invalid("/member", "give either member or department")),
    };
    if forecast::month_start(&input.month).is_none() {
        return Err(Problem::invalid("/month", "must be a month, e.g. 2026-12"));
    }
    let amount = match input.amount_fen {
        Some(fen) if fen <= 0 => return Err(Problem::invalid("/amount_fen", "must be more than 0, or null")),
        Some(fen) => Some(Amount(fen)),
        None => None,
    };
    auth.require_member_in_scope("member", input.member.as_deref())?;
    auth.require_department_in_scope(&state.db, input.department).await?;
    let now = now_ms();
    let txn = begin_write(&state.db).await?;
    forecast::set_target(&txn, kind, &id, &input.month, amount, now).await?;
    audit::record(
        &txn,
        &auth.actor(),
        "target.set",
        None,
        input.member.as_deref(),
        serde_json::json!({ "scope": kind, "id": id, "month": input.month, "amount_fen": input.amount_fen }),
    )
    .await?;
    txn.commit().await?;
    Ok(Json(Target {
        scope: format!("{kind}:{id}"),
        month: input.month,
        amount_fen: input.amount_fen,
    }))
}

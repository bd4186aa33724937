//! `/api/v1/channels`: lead channels — a 「联系我」 QR code's state, its name, the welcome message
//! and the lead status (with its follow-up plan) its customers enter. Reading is open to every
//! token; changing needs an admin token, and every change is in the audit log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody};
use super::problem::responses::{AdminOnly, Invalid, NotFound, Unauthorized};
use super::problem::{FieldError, Problem, ProblemDocument};
use super::time;
use crate::config::ChannelSeed;
use crate::crm::channels::{self, ChannelError, ChannelFields};
use crate::crm::deals;
use crate::db::entity::channel;
use crate::db::{begin_write, now_ms};
use crate::http::AppState;

/// WeCom accepts a 「联系我」 state of at most 30 characters.
const MAX_STATE_CHARS: usize = 30;
const MAX_NAME_CHARS: usize = 64;
/// A text message is at most 2048 bytes; leave room for the filled-in names.
const MAX_WELCOME_BYTES: usize = 1800;

#[derive(Debug, Serialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    /// The state of the QR code (「联系我」 state).
    pub state: String,
    pub name: String,
    /// The welcome message; `{name}` is the customer, `{rep}` the member.
    pub welcome: Option<String>,
    /// The lead status its customers enter (and so the follow-up plan).
    pub plan: Option<String>,
    /// Who owns its new customers: `round_robin`, `least_loaded` or a list of userids; absent: the
    /// rep they added.
    #[schema(value_type = Option<crate::config::AssignRule>)]
    pub assign: Option<crate::config::AssignRule>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<Channel>,
}

/// Checks a channel as written, naming every field at fault.
fn validate(input: ChannelSeed) -> Result<ChannelFields, Problem> {
    let mut errors = Vec::new();
    let mut fault = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        })
    };
    let state = input.state.trim().to_owned();
    if state.is_empty() || state.chars().count() > MAX_STATE_CHARS {
        fault(
            "/state",
            "must be 1 to 30 characters (WeCom's limit for a QR code state)",
        );
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        fault("/name", "must be 1 to 64 characters");
    }
    let welcome = input.welcome.filter(|w| !w.trim().is_empty());
    if welcome.as_ref().is_some_and(|w| w.len() > MAX_WELCOME_BYTES) {
        fault("/welcome", "must be at most 1800 bytes");
    }
    let plan = match input.plan.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(text) => match deals::parse_status(text) {
            Some(key) => Some(key.to_owned()),
            None => {
                fault(
                    "/plan",
                    "must be a lead status: hot, interested, qualified, on_hold or inactive",
                );
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(Problem::Invalid(errors));
    }
    Ok(ChannelFields {
        state,
        name,
        welcome_template: welcome,
        plan,
        assign: match input.assign {
            Some(crate::config::AssignRule::Pool) => {
                return Err(Problem::Invalid(vec![FieldError {
                    field: "/assign".into(),
                    message: "a channel's customers have the rep they added; use round_robin, least_loaded or a list"
                        .into(),
                }]));
            }
            other => other.map(|rule| rule.to_text()),
        },
    })
}

fn channel_out(c: channel::Model, tz: chrono_tz::Tz) -> Channel {
    Channel {
        id: c.id,
        state: c.state,
        name: c.name,
        welcome: c.welcome_template,
        plan: c.follow_up_plan,
        assign: c
            .assign
            .as_deref()
            .and_then(|a| crate::config::AssignRule::parse(a).ok()),
        created_at: time(c.created_at, tz),
        updated_at: time(c.updated_at, tz),
    }
}

fn channel_problem(e: ChannelError) -> Problem {
    match e {
        ChannelError::StateTaken(_) => Problem::Conflict(e.to_string()),
        ChannelError::Db(e) => Problem::Database(e),
    }
}

fn parse_id(id: &str) -> Result<i64, Problem> {
    id.parse().map_err(|_| Problem::NotFound("channel"))
}

/// List channels
#[utoipa::path(
    get,
    path = "/channels",
    operation_id = "listChannels",
    tag = "channels",
    responses(
        (status = 200, description = "OK", body = ChannelList),
        Unauthorized,
    ),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, _auth: Auth) -> Result<Json<ChannelList>, Problem> {
    let tz = state.config.org.tz();
    let items = channels::list(&state.db).await?;
    Ok(Json(ChannelList {
        items: items.into_iter().map(|c| channel_out(c, tz)).collect(),
    }))
}

/// Get a channel
#[utoipa::path(
    get,
    path = "/channels/{id}",
    operation_id = "getChannel",
    tag = "channels",
    params(("id" = i64, Path, description = "the channel's id")),
    responses(
        (status = 200, description = "OK", body = Channel),
        Unauthorized,
        NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn get(State(state): State<AppState>, _auth: Auth, Path(id): Path<String>) -> Result<Json<Channel>, Problem> {
    use sea_orm::EntityTrait;
    let found = channel::Entity::find_by_id(parse_id(&id)?)
        .one(&state.db)
        .await?
        .ok_or(Problem::NotFound("channel"))?;
    Ok(Json(channel_out(found, state.config.org.tz())))
}

/// Create a channel
///
/// Channels listed in the configuration file (`[[channels]]`) are applied again at every start;
/// manage a channel in one place or the other.
#[utoipa::path(
    post,
    path = "/channels",
    operation_id = "createChannel",
    tag = "channels",
    request_body = ChannelSeed,
    responses(
        (status = 201, description = "created", body = Channel),
        Unauthorized,
        AdminOnly,
        (status = 409, description = "conflicts with an existing channel", body = ProblemDocument, content_type = "application/problem+json"),
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(input): JsonBody<ChannelSeed>,
) -> Result<(StatusCode, Json<Channel>), Problem> {
    auth.require_admin()?;
    let fields = validate(input)?;
    let txn = begin_write(&state.db).await?;
    let created = channels::create(&txn, &auth.actor(), &fields, now_ms())
        .await
        .map_err(channel_problem)?;
    txn.commit().await?;
    Ok((StatusCode::CREATED, Json(channel_out(created, state.config.org.tz()))))
}

/// Replace a channel
#[utoipa::path(
    put,
    path = "/channels/{id}",
    operation_id = "replaceChannel",
    tag = "channels",
    params(("id" = i64, Path, description = "the channel's id")),
    request_body = ChannelSeed,
    responses(
        (status = 200, description = "OK", body = Channel),
        Unauthorized,
        AdminOnly,
        NotFound,
        (status = 409, description = "conflicts with an existing channel", body = ProblemDocument, content_type = "application/problem+json"),
        Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn replace(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ChannelSeed>,
) -> Result<Json<Channel>, Problem> {
    auth.require_admin()?;
    let id = parse_id(&id)?;
    let fields = validate(input)?;
    let txn = begin_write(&state.db).await?;
    let updated = channels::update(&txn, &auth.actor(), id, &fields, now_ms())
        .await
        .map_err(channel_problem)?
        .ok_or(Problem::NotFound("channel"))?;
    txn.commit().await?;
    Ok(Json(channel_out(updated, state.config.org.tz())))
}

/// Delete a channel
///
/// Customers who came through it keep their lead source.
#[utoipa::path(
    delete,
    path = "/channels/{id}",
    operation_id = "deleteChannel",
    tag = "channels",
    params(("id" = i64, Path, description = "the channel's id")),
    responses(
        (status = 204, description = "deleted"),
        Unauthorized,
        AdminOnly,
        NotFound,
    ),
    security(("bearer" = []))
)]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    auth.require_admin()?;
    let id = parse_id(&id)?;
    let txn = begin_write(&state.db).await?;
    let deleted = channels::delete(&txn, &auth.actor(), id).await?;
    txn.commit().await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::NotFound("channel"))
    }
}

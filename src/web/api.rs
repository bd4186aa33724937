//! The JSON the pages read and write through, under `/web/api`: the JS-SDK signatures and a
//! customer's card, and the writes a rep makes from the page — a note, a reminder, stage / status /
//! rating / tags — through the same domain functions as the chat commands (same permissions,
//! audit log and `撤销` / `undo`). Errors are problem details naming the field at fault.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

use super::WEB_BODY_LIMIT;
use super::user::{ApiUser, WriteUser};
use crate::bot::time;
use crate::config::LeadStatus;
use crate::crm::audit::Actor;
use crate::crm::card::{self, Access, Card, Person};
use crate::crm::deals::{self, Field};
use crate::crm::{customers, followups, pipeline, plans, reminders};
use crate::db::entity::customer;
use crate::db::{self, now_ms};
use crate::http::AppState;
use crate::http::api::extract::JsonBody;
use crate::http::api::problem::Problem;
use crate::texts::Lang;
use crate::wecom::jssdk;

type Body<T> = JsonBody<T, WEB_BODY_LIMIT>;

fn rfc3339(ms: i64, tz: Tz) -> String {
    time::rfc3339(
        &tz.from_utc_datetime(
            &DateTime::<Utc>::from_timestamp_millis(ms)
                .unwrap_or_default()
                .naive_utc(),
        ),
    )
}

fn say(lang: Lang, zh: String, en: String) -> String {
    if lang.en() { en } else { zh }
}

#[derive(Deserialize)]
pub struct JssdkQuery {
    url: Option<String>,
}

/// What a page registers with WeCom's JS-SDK (`ww.register`): the corp signature (corp ticket)
/// and the agent signature (the app's ticket), over the same nonce and timestamp.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JssdkConfig {
    corp_id: String,
    agent_id: i64,
    timestamp: i64,
    nonce_str: String,
    signature: String,
    agent_signature: String,
}

/// `GET /web/api/jssdk?url=`: signatures for a page under `web.public_url` (never another site's).
pub async fn jssdk(
    _user: ApiUser,
    State(state): State<AppState>,
    Query(query): Query<JssdkQuery>,
) -> Result<Json<JssdkConfig>, Problem> {
    let base = state.config.web.base().unwrap_or_default();
    let url = query.url.unwrap_or_default();
    let page = jssdk::signed_url(url.trim());
    let under_base = page
        .strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?') || rest.is_empty());
    if page.is_empty() || !under_base {
        return Err(Problem::invalid(
            "url",
            format!("must be the URL of a page under {base} (without its # part)"),
        ));
    }
    let wecom = &state.services.wecom;
    let unavailable = |e: crate::wecom::api::WecomError| {
        tracing::warn!(error = %crate::telemetry::Chain(&e), "JS-SDK ticket unavailable");
        Problem::Upstream("WeCom did not give a JS-SDK ticket; retry in a moment".into())
    };
    let corp_ticket = wecom.corp_ticket().await.map_err(unavailable)?;
    let agent_ticket = wecom.agent_ticket().await.map_err(unavailable)?;
    let timestamp = now_ms() / 1000;
    let nonce: String = rand::random::<[u8; 12]>().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Json(JssdkConfig {
        corp_id: state.config.wecom.corp_id.clone(),
        agent_id: state.config.wecom.agent_id,
        timestamp,
        signature: jssdk::signature(&corp_ticket, &nonce, timestamp, page),
        agent_signature: jssdk::signature(&agent_ticket, &nonce, timestamp, page),
        nonce_str: nonce,
    }))
}

/// The customer `external_userid` and what `userid` may do with them; 404 when they may not see
/// the customer (whether or not it exists).
pub(super) async fn find(
    state: &AppState,
    userid: &str,
    external_userid: &str,
) -> Result<(customer::Model, Access), DbErr> {
    let Some(c) = customers::find_by_external(&state.db, external_userid).await? else {
        return Err(DbErr::RecordNotFound(external_userid.to_owned()));
    };
    match card::access(&state.db, userid, &c).await? {
        Some(access) => Ok((c, access)),
        None => Err(DbErr::RecordNotFound(external_userid.to_owned())),
    }
}

async fn find_problem(
    state: &AppState,
    userid: &str,
    external_userid: &str,
) -> Result<(customer::Model, Access), Problem> {
    match find(state, userid, external_userid).await {
        Ok(found) => Ok(found),
        Err(DbErr::RecordNotFound(_)) => Err(Problem::NotFound("customer")),
        Err(e) => Err(e.into()),
    }
}

async fn find_changeable(state: &AppState, user: &ApiUser, external_userid: &str) -> Result<customer::Model, Problem> {
    match find_problem(state, &user.session.userid, external_userid).await? {
        (c, Access::Change) => Ok(c),
        (_, Access::View) => Err(Problem::Forbidden(say(
            user.lang,
            "你可以查看这位客户，但只有负责或跟进的同事可以修改。".into(),
            "You can see this customer, but only the reps who own or follow them can change them.".into(),
        ))),
    }
}

#[derive(Serialize)]
pub struct PersonJson {
    userid: String,
    name: String,
}

impl From<&Person> for PersonJson {
    fn from(p: &Person) -> Self {
        Self {
            userid: p.userid.clone(),
            name: p.name.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct FollowerJson {
    #[serde(flatten)]
    person: PersonJson,
    remark: String,
    added_at: Option<String>,
    owner: bool,
}

#[derive(Serialize)]
pub struct FollowUpJson {
    id: i64,
    author: PersonJson,
    content: String,
    created_at: String,
}

#[derive(Serialize)]
pub struct ReminderJson {
    id: i64,
    owner: PersonJson,
    text: String,
    due_at: String,
    /// pending, claimed, queued, sent or failed.
    delivery: String,
    /// Why the push failed, when it did.
    failure: Option<String>,
}

#[derive(Serialize)]
pub struct StatusJson {
    key: &'static str,
    label: &'static str,
}

/// A customer's card, as `GET /web/api/customers/{external_userid}` answers it.
#[derive(Serialize)]
pub struct CardJson {
    external_userid: String,
    name: String,
    corp_name: String,
    position: String,
    avatar: String,
    /// `wechat` (a WeChat user) or `wecom` (a member of another company).
    contact_type: &'static str,
    /// The lead channel (`state` of the QR code or link) and its name.
    channel: Option<String>,
    source: String,
    owner: Option<PersonJson>,
    followers: Vec<FollowerJson>,
    stage: Option<String>,
    status: Option<String>,
    status_label: Option<String>,
    rating: Option<String>,
    tags: Vec<String>,
    /// The behaviour score and its segment (important, main, normal, at_risk) with its name.
    score: i32,
    segment: Option<String>,
    segment_label: Option<&'static str>,
    /// In the lead pool (公海): owned by no one.
    in_pool: bool,
    /// The last 10 follow-ups, newest first.
    follow_ups: Vec<FollowUpJson>,
    /// Open reminders, soonest first.
    reminders: Vec<ReminderJson>,
    at_risk: bool,
    risk_reason: Option<String>,
    /// Whether the signed-in member may change the customer (owner or follower), or only see them
    /// (a leader of their team).
    can_edit: bool,
    /// The configured stages and lead statuses, for choosing.
    stages: Vec<String>,
    statuses: Vec<StatusJson>,
}

pub(super) fn card_json(card: &Card, access: Access, tz: Tz, lang: Lang) -> CardJson {
    let c = &card.customer;
    let owner = c.owner_userid.as_deref();
    CardJson {
        external_userid: c.external_userid.clone(),
        name: c.name.clone(),
        corp_name: c.corp_name.clone(),
        position: c.position.clone(),
        avatar: c.avatar.clone(),
        contact_type: if c.contact_type == 2 { "wecom" } else { "wechat" },
        channel: c.first_state.clone(),
        source: card.source.clone(),
        owner: card.owner.as_ref().map(PersonJson::from),
        followers: card
            .followers
            .iter()
            .map(|f| FollowerJson {
                person: PersonJson::from(&f.person),
                remark: f.remark.clone(),
                added_at: f.added_at.map(|t| rfc3339(t, tz)),
                owner: Some(f.person.userid.as_str()) == owner,
            })
            .collect(),
        stage: c.stage.clone(),
        status: c.lead_status.clone(),
        status_label: c.lead_status.as_deref().map(|s| deals::status_label(s, lang.en())),
        rating: c.rating.clone(),
        tags: card.tags.clone(),
        score: c.score,
        segment: c.segment.clone(),
        segment_label: c
            .segment
            .as_deref()
            .and_then(crate::crm::score::Segment::from_key)
            .map(|s| s.label(lang.en())),
        in_pool: c.pooled_at.is_some(),
        follow_ups: card
            .follow_ups
            .iter()
            .map(|(n, author)| FollowUpJson {
                id: n.id,
                author: PersonJson::from(author),
                content: n.content.clone(),
                created_at: rfc3339(n.created_at, tz),
            })
            .collect(),
        reminders: card
            .reminders
            .iter()
            .map(|(r, owner)| ReminderJson {
                id: r.id,
                owner: PersonJson::from(owner),
                text: r.text.clone(),
                due_at: rfc3339(r.due_at, tz),
                delivery: r.delivery_state.as_str().to_owned(),
                failure: r.last_error.clone().filter(|_| r.delivery_state.as_str() == "failed"),
            })
            .collect(),
        at_risk: card.risk.is_some(),
        risk_reason: card.risk.clone(),
        can_edit: access == Access::Change,
        stages: card.stages.clone(),
        statuses: LeadStatus::ALL
            .iter()
            .map(|s| StatusJson {
                key: s.key(),
                label: s.label(),
            })
            .collect(),
    }
}

/// `GET /web/api/customers/{external_userid}`: the card.
pub async fn customer(
    user: ApiUser,
    State(state): State<AppState>,
    Path(external_userid): Path<String>,
) -> Result<Json<CardJson>, Problem> {
    let (c, access) = find_problem(&state, &user.session.userid, &external_userid).await?;
    let card = card::card(&state.db, &state.config, c, now_ms()).await?;
    Ok(Json(card_json(&card, access, state.services.tz(), user.lang)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    text: String,
}

/// What a write answers: what was stored, said as the chat says it, and the stored item.
#[derive(Serialize)]
pub struct Written<T: Serialize> {
    message: String,
    #[serde(flatten)]
    item: T,
}

/// `POST /web/api/customers/{external_userid}/notes` `{"text"}`: a follow-up note.
pub async fn add_note(
    WriteUser(user): WriteUser,
    State(state): State<AppState>,
    Path(external_userid): Path<String>,
    JsonBody(input): Body<NoteInput>,
) -> Result<(StatusCode, Json<Written<FollowUpJson>>), Problem> {
    let text = input.text.trim();
    if text.is_empty() || text.chars().count() > 2000 {
        return Err(Problem::invalid("/text", "must be 1 to 2,000 characters"));
    }
    let c = find_changeable(&state, &user, &external_userid).await?;
    let me = &user.session.userid;
    let now = now_ms();
    let txn = db::begin_write(&state.db).await?;
    let note = followups::add(&txn, c.id, me, text, now, state.services.tz()).await?;
    txn.commit().await?;
    let name = customers::display(&c);
    let author = Person {
        userid: me.clone(),
        name: crate::crm::members::display_name(&state.db, me).await?,
    };
    Ok((
        StatusCode::CREATED,
        Json(Written {
            message: say(
                user.lang,
                format!("✅ 已记录跟进 · {name}"),
                format!("✅ Follow-up saved · {name}"),
            ),
            item: FollowUpJson {
                id: note.id,
                author: PersonJson::from(&author),
                content: note.content,
                created_at: rfc3339(note.created_at, state.services.tz()),
            },
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderInput {
    /// When: as in chat (`明天下午3点`, `3天后`, `in 2h`) or an RFC 3339 instant.
    at: String,
    /// What to do; may be left out when `at` carries it (`明天下午3点 回电话`).
    #[serde(default)]
    text: Option<String>,
}

#[derive(Serialize)]
pub struct ReminderCreated {
    id: i64,
    text: String,
    due_at: String,
}

/// Reads `at` as an RFC 3339 instant or as chat's natural language; returns the instant and what
/// followed the time in the text. A time in the past is refused.
fn read_time(at: &str, now: i64, tz: Tz, default_hour: u32, lang: Lang) -> Result<(i64, String), Problem> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(at.trim()) {
        let ms = instant.timestamp_millis();
        if ms <= now {
            return Err(Problem::invalid(
                "/at",
                say(lang, "这个时间已经过去了。".into(), "that time has passed".into()),
            ));
        }
        return Ok((ms, String::new()));
    }
    let local_now = tz.from_utc_datetime(
        &DateTime::<Utc>::from_timestamp_millis(now)
            .unwrap_or_default()
            .naive_utc(),
    );
    match time::parse(at, local_now, default_hour) {
        Ok(parsed) => Ok((parsed.at.timestamp_millis(), parsed.rest.trim().to_owned())),
        Err(e) => Err(Problem::invalid(
            "/at",
            if lang.en() { e.message_en() } else { e.message_zh() },
        )),
    }
}

/// `POST /web/api/customers/{external_userid}/reminders` `{"at", "text"}`: a reminder for the
/// signed-in rep on this customer.
pub async fn add_reminder(
    WriteUser(user): WriteUser,
    State(state): State<AppState>,
    Path(external_userid): Path<String>,
    JsonBody(input): Body<ReminderInput>,
) -> Result<(StatusCode, Json<Written<ReminderCreated>>), Problem> {
    let now = now_ms();
    let tz = state.services.tz();
    let lang = user.lang;
    let (due, rest) = read_time(&input.at, now, tz, state.config.bot.default_hour, lang)?;
    let given = input.text.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let text = match (given.is_empty(), rest.is_empty()) {
        (false, false) => {
            // Never store a time read wrongly: what follows the time must be the text itself.
            return Err(Problem::invalid(
                "/at",
                say(
                    lang,
                    format!("时间后面还有「{rest}」，请只写时间，内容写在提醒内容里。"),
                    format!("“{rest}” follows the time: put only the time here and the rest in the text."),
                ),
            ));
        }
        (false, true) => given,
        (true, false) => rest,
        (true, true) => say(lang, "跟进".into(), "follow up".into()),
    };
    if text.chars().count() > 500 {
        return Err(Problem::invalid("/text", "must be at most 500 characters"));
    }
    let c = find_changeable(&state, &user, &external_userid).await?;
    let me = &user.session.userid;
    let txn = db::begin_write(&state.db).await?;
    let created = reminders::create(
        &txn,
        me,
        &Actor::Member(me.clone()),
        Some(c.id),
        &text,
        due,
        "manual",
        now,
    )
    .await?;
    txn.commit().await?;
    let when = crate::bot::replies::when(due, tz, lang);
    let name = &c.name;
    Ok((
        StatusCode::CREATED,
        Json(Written {
            message: say(
                lang,
                format!("⏰ 提醒已设置：{when} · {name} · {text}"),
                format!("⏰ Reminder set: {when} · {name} · {text}"),
            ),
            item: ReminderCreated {
                id: created.id,
                text: created.text,
                due_at: rfc3339(due, tz),
            },
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateInput {
    /// A configured stage, by name or number.
    #[serde(default)]
    stage: Option<String>,
    /// A lead status: qualified, interested, hot, on_hold, inactive (or 确定, 有兴趣, 热, 观望, 停止).
    #[serde(default)]
    status: Option<String>,
    /// A, B or C.
    #[serde(default)]
    rating: Option<String>,
    /// The customer's tags, all of them (each 1–20 characters, at most 20).
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `PATCH /web/api/customers/{external_userid}`: stage, status, rating and tags; fields left out
/// stay. Answers the card as it is now.
pub async fn update(
    WriteUser(user): WriteUser,
    State(state): State<AppState>,
    Path(external_userid): Path<String>,
    JsonBody(input): Body<UpdateInput>,
) -> Result<Json<Written<CardJson>>, Problem> {
    let lang = user.lang;
    let stages = crate::crm::stages::current(&state.db, &state.config).await?;
    let mut errors = Vec::new();
    let stage = input.stage.as_deref().map(|s| deals::parse_stage(&stages, s));
    if stage == Some(None) {
        errors.push(("/stage", format!("must be one of: {}", stages.join(", "))));
    }
    let status = input.status.as_deref().map(deals::parse_status);
    if status == Some(None) {
        errors.push((
            "/status",
            "must be qualified, interested, hot, on_hold or inactive".to_owned(),
        ));
    }
    let rating = input.rating.as_deref().map(deals::parse_rating);
    if rating == Some(None) {
        errors.push(("/rating", "must be A, B or C".to_owned()));
    }
    let tags = input.tags.map(|tags| {
        let mut clean: Vec<String> = Vec::new();
        for tag in tags.iter().map(|t| t.trim().to_owned()) {
            if !clean.contains(&tag) {
                clean.push(tag);
            }
        }
        clean
    });
    if let Some(tags) = &tags
        && (tags.len() > 20 || tags.iter().any(|t| t.is_empty() || t.chars().count() > 20))
    {
        errors.push(("/tags", "at most 20 tags of 1 to 20 characters each".to_owned()));
    }
    if !errors.is_empty() {
        return Err(Problem::Invalid(
            errors
                .into_iter()
                .map(|(field, message)| crate::http::api::problem::FieldError {
                    field: field.into(),
                    message,
                })
                .collect(),
        ));
    }
    let c = find_changeable(&state, &user, &external_userid).await?;
    let me = &user.session.userid;
    let actor = Actor::Member(me.clone());
    let now = now_ms();
    let mut changed = Vec::new();
    let txn = db::begin_write(&state.db).await?;
    let changes = [
        (Field::Stage, stage.flatten().map(str::to_owned)),
        (Field::Status, status.flatten().map(str::to_owned)),
        (Field::Rating, rating.flatten().map(str::to_owned)),
        (Field::Tags, tags.as_deref().map(deals::tags_json)),
    ];
    for (field, value) in changes {
        let Some(value) = value else { continue };
        if field.get(&c).as_deref() == Some(value.as_str()) {
            continue;
        }
        if field == Field::Stage {
            // The stage is the deals': the customer's only open deal moves (none: one is made).
            let stages = crate::crm::stages::current(&txn, &state.config).await?;
            let set = pipeline::set_customer_stage(&txn, &stages, &c, &value, &actor, me, now).await?;
            match set {
                pipeline::StageSet::Several(open) => {
                    txn.rollback().await?;
                    return Err(Problem::Conflict(format!(
                        "{} has {} open deals: say which one moves (in chat: 阶段 {value})",
                        customers::display(&c),
                        open.len()
                    )));
                }
                pipeline::StageSet::Created(deal) | pipeline::StageSet::Moved { deal, .. } => {
                    crate::report::pipeline::deal_won(&txn, &deal).await?;
                }
            }
            changed.push(field);
            continue;
        }
        deals::set(&txn, &c, field, Some(value.clone()), &actor, now).await?;
        if field == Field::Status {
            plans::apply(&txn, &state.config.plans, &c, &value, now).await?;
        }
        changed.push(field);
    }
    txn.commit().await?;
    let fresh = customers::find_by_external(&state.db, &external_userid)
        .await?
        .ok_or(Problem::NotFound("customer"))?;
    let name = customers::display(&fresh);
    let message = if changed.is_empty() {
        say(lang, format!("没有变化 · {name}"), format!("Nothing changed · {name}"))
    } else {
        let what: Vec<&str> = changed.iter().map(|f| f.label(lang.en())).collect();
        say(
            lang,
            format!("✅ 已更新{} · {name}", what.join("、")),
            format!("✅ Updated {} · {name}", what.join(", ")),
        )
    };
    let card = card::card(&state.db, &state.config, fresh, now).await?;
    Ok(Json(Written {
        message,
        item: card_json(&card, Access::Change, state.services.tz(), lang),
    }))
}

//! Member events (`change_contact`) and what a departure sets in motion. The periodic org sync
//! uses the same functions, since these events are not guaranteed to reach a self-built app.

use sea_orm::TransactionTrait;
use serde_json::json;

use super::{texts, wecom_error};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::config::DepartureRule;
use crate::crm::assign::{self, Among};
use crate::crm::audit::{self, Actor};
use crate::crm::members::{self, Handover, MemberChange, STATUS_LEFT};
use crate::crm::{pool, stages};
use crate::db::entity::customer;
use crate::db::entity::inbox;
use crate::db::{begin_write, now_ms};
use crate::inbox::{HandlerError, Outcome};
use crate::notify;
use crate::services::Services;
use crate::wecom::api::types::Member;
use crate::wecom::api::{MessageBody, WecomError, codes};
use crate::wecom::callback::{ContactChange, ContactEvent};

pub async fn handle(s: &Services, row: &inbox::Model, event: &ContactEvent) -> Result<Outcome, HandlerError> {
    let at = if row.create_time > 0 {
        row.create_time * 1000
    } else {
        row.received_at
    };
    match event.change {
        ContactChange::DeleteUser => {
            let handover = apply_departure(s, &event.user_id, at, &Actor::Wecom).await?;
            Ok(match handover {
                Some(h) => Outcome::Processed(describe(&h)),
                None => Outcome::Ignored(format!("{} had already left", event.user_id)),
            })
        }
        ContactChange::CreateUser | ContactChange::UpdateUser => {
            let mut userid = event.user_id.clone();
            if let Some(new) = event.new_user_id.as_deref().filter(|n| *n != event.user_id) {
                let txn = s.db.begin().await?;
                members::rename_member(&txn, &event.user_id, new, now_ms()).await?;
                txn.commit().await?;
                userid = new.to_owned();
            }
            let member = match s.wecom.get_user(&userid).await {
                Ok(member) => member,
                // Outside the app's visibility or gone: what the event itself says is all we have.
                Err(WecomError::Api {
                    code: codes::USER_NOT_FOUND | 60011,
                    ..
                }) if event.name.is_some() => from_event(event, &userid),
                Err(e) => return Err(wecom_error(e)),
            };
            let change = sync_member(s, &member, &Actor::Wecom).await?;
            Ok(Outcome::Processed(format!("member {userid} {change:?}").to_lowercase()))
        }
    }
}

fn from_event(event: &ContactEvent, userid: &str) -> Member {
    Member {
        userid: userid.to_owned(),
        name: event.name.clone().unwrap_or_default(),
        department: event.departments.clone(),
        is_leader_in_dept: event.is_leader_in_dept.iter().map(|l| i32::from(*l)).collect(),
        direct_leader: event.direct_leader.clone(),
        main_department: event.main_department.unwrap_or_default(),
        position: event.position.clone().unwrap_or_default(),
        status: event.status.unwrap_or(1),
        alias: event.alias.clone().unwrap_or_default(),
        order: Vec::new(),
    }
}

/// Brings one member up to date; one WeCom reports as left is handled as a departure.
pub async fn sync_member(s: &Services, member: &Member, actor: &Actor) -> Result<MemberChange, HandlerError> {
    let change = {
        let txn = begin_write(&s.db).await?;
        let change = members::upsert_member(&txn, member, now_ms()).await?;
        if change == MemberChange::Created {
            audit::record(
                &txn,
                actor,
                "member.created",
                None,
                Some(&member.userid),
                json!({ "name": member.name }),
            )
            .await?;
        }
        txn.commit().await?;
        change
    };
    if member.status == STATUS_LEFT {
        apply_departure(s, &member.userid, now_ms(), actor).await?;
    }
    Ok(change)
}

/// Marks a member as left and hands their customers over (see [`members::depart`]); tells the
/// successor, and starts WeCom's resigned transfer when configured. `None` when already done.
pub async fn apply_departure(
    s: &Services,
    userid: &str,
    at: i64,
    actor: &Actor,
) -> Result<Option<Handover>, HandlerError> {
    let fallback = Some(s.config.customers.handover_fallback.as_str()).filter(|f| !f.is_empty());
    let txn = begin_write(&s.db).await?;
    let placed = place_departed_customers(s, &txn, userid, at, actor).await?;
    let Some(handover) = members::depart(&txn, userid, at, fallback, actor).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    match &handover.successor {
        Some(successor) if handover.customers > 0 || handover.reminders > 0 => {
            let text = texts::handover_received(&handover.departed_name, handover.customers, handover.reminders);
            notify::enqueue(
                &txn,
                &format!("handover:{userid}:{at}"),
                successor,
                &MessageBody::text(text),
            )
            .await?;
        }
        Some(_) => {}
        None if handover.customers > 0 => tracing::warn!(
            userid,
            customers = handover.customers,
            "a departed member's customers have no successor: set customers.handover_fallback"
        ),
        None => {}
    }
    txn.commit().await?;
    s.notifier.wake();
    tracing::info!(userid, successor = ?handover.successor, customers = handover.customers,
        by_assignment_rule = placed, "member departed");

    if s.config.customers.resigned_transfer
        && let Some(successor) = &handover.successor
        && !handover.followed_external_userids.is_empty()
    {
        let detail = match s
            .wecom
            .resigned_transfer_customer(userid, successor, &handover.followed_external_userids)
            .await
        {
            Ok(results) => {
                let started = results.iter().filter(|r| r.errcode == 0).count();
                json!({ "to": successor, "started": started, "refused": results.len() - started })
            }
            Err(e) => {
                tracing::warn!(userid, error = %e, "WeCom resigned transfer could not be started");
                json!({ "to": successor, "error": e.to_string() })
            }
        };
        audit::record(&s.db, actor, "member.resigned_transfer", None, Some(userid), detail).await?;
    }
    Ok(Some(handover))
}

/// With `assignment.departed` set to a rule, the departing rep's customers go by it (among their
/// department) or to the pool, before the rest of the handover; returns how many. Each new owner
/// is told by `jobs::leads`.
async fn place_departed_customers(
    s: &Services,
    txn: &sea_orm::DatabaseTransaction,
    userid: &str,
    at: i64,
    actor: &Actor,
) -> Result<usize, HandlerError> {
    let rules = pool::rules(txn, &s.config).await?;
    let DepartureRule::Assign(rule) = &rules.assignment.departed else {
        return Ok(0);
    };
    let already_left = crate::db::entity::member::Entity::find_by_id(userid.to_owned())
        .one(txn)
        .await?
        .is_some_and(|m| !m.active);
    if already_left {
        return Ok(0);
    }
    let stages = stages::current(txn, &s.config).await?;
    let among = match assign::home_department(txn, userid).await? {
        Some(department) => Among::Department(department),
        None => Among::configured(&rules.assignment),
    };
    let owned = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.eq(userid))
        .all(txn)
        .await?;
    let to_rule = (rule, among, rules.assignment.max_open_leads);
    for lead in &owned {
        // The departing rep is no candidate: they are marked inactive only afterwards.
        assign::place(txn, actor, to_rule, &stages, (lead, Some(userid)), "离职交接", at).await?;
    }
    Ok(owned.len())
}

fn describe(h: &Handover) -> String {
    match &h.successor {
        Some(successor) => format!(
            "{} left; {} customers and {} open reminders handed to {successor}",
            h.departed, h.customers, h.reminders
        ),
        None => format!("{} left; no successor for {} customers", h.departed, h.customers),
    }
}

//! 客户联系 events: customers added, edited and lost, and failed transfers.

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use super::{texts, wecom_error};
use crate::config::AssignRule;
use crate::crm::assign::{self, Among};
use crate::crm::audit::{self, Actor};
use crate::crm::customers::{self, FollowerChange, FollowerInput, RemovedBy};
use crate::crm::deals::{self, Field};
use crate::crm::{channels, members, plans, pool};
use crate::db::entity::job_run::RunStatus;
use crate::db::entity::{customer, follower, inbox};
use crate::db::runs;
use crate::db::{begin_write, now_ms};
use crate::inbox::{HandlerError, Outcome, finish_within};
use crate::notify;
use crate::services::Services;
use crate::texts::{date_key, start_of_day};
use crate::wecom::api::types::{ExternalContactDetail, WelcomeMessage, WelcomeOutcome};
use crate::wecom::api::{MessageBody, WecomError, codes};
use crate::wecom::callback::{ExternalContactChange, ExternalContactEvent};

/// A welcome code is valid for 20 seconds after the event; keep a little margin.
const WELCOME_VALIDITY_MS: i64 = 19_000;

pub async fn handle(s: &Services, row: &inbox::Model, event: &ExternalContactEvent) -> Result<Outcome, HandlerError> {
    match event.change {
        ExternalContactChange::Add => added(s, row, event, false).await,
        ExternalContactChange::AddHalf => added(s, row, event, true).await,
        ExternalContactChange::Edit => edited(s, event).await,
        ExternalContactChange::Delete => removed(s, row, event, RemovedBy::Member).await,
        ExternalContactChange::DeleteFollowUser => removed(s, row, event, RemovedBy::Customer).await,
        ExternalContactChange::TransferFail => transfer_failed(s, row, event).await,
    }
}

/// When the event happened (WeCom's clock), falling back to when we received it.
fn event_time(row: &inbox::Model) -> i64 {
    if row.create_time > 0 {
        row.create_time * 1000
    } else {
        row.received_at
    }
}

/// Makes sure the member is known locally (names in messages, leaders for alerts); returns the name
/// to show for them.
async fn ensure_member(s: &Services, userid: &str) -> Result<String, HandlerError> {
    let known = crate::db::entity::member::Entity::find_by_id(userid.to_owned())
        .one(&s.db)
        .await?;
    let name = match known {
        Some(member) => member.name,
        None => match s.wecom.get_user(userid).await {
            Ok(member) => {
                members::upsert_member(&s.db, &member, now_ms()).await?;
                member.name
            }
            Err(e) => {
                tracing::warn!(userid, error = %e, "member unknown and not readable from WeCom");
                String::new()
            }
        },
    };
    Ok(members::name_or_id(name, userid))
}

/// `externalcontact/get`, with "the relation is gone" told apart from a failure worth retrying.
async fn fetch_profile(s: &Services, external_userid: &str) -> Result<Option<ExternalContactDetail>, HandlerError> {
    match s.wecom.get_external_contact(external_userid).await {
        Ok(detail) => Ok(Some(detail)),
        Err(WecomError::Api {
            code: codes::INVALID_EXTERNAL_USERID | codes::NO_RELATIONSHIP,
            ..
        }) => Ok(None),
        Err(e) => Err(wecom_error(e)),
    }
}

async fn added(
    s: &Services,
    row: &inbox::Model,
    event: &ExternalContactEvent,
    half: bool,
) -> Result<Outcome, HandlerError> {
    let at = event_time(row);
    let rep_name = ensure_member(s, &event.user_id).await?;
    let profile = s.wecom.get_external_contact(&event.external_user_id).await;
    let channel = channels::find_by_state(&s.db, event.state.as_deref().unwrap_or_default()).await?;

    // The welcome code expires 20 s after the event: send before anything slower.
    let mut notes = Vec::new();
    if let Some(code) = &event.welcome_code {
        let remaining = row.received_at + WELCOME_VALIDITY_MS - now_ms();
        if remaining <= 0 {
            notes.push("welcome code expired before it could be used".to_owned());
        } else {
            let template = channel
                .as_ref()
                .and_then(|c| c.welcome_template.clone())
                .unwrap_or_else(|| s.config.customers.welcome_message.clone());
            let name = profile
                .as_ref()
                .map(|p| p.external_contact.name.clone())
                .unwrap_or_default();
            let text = channels::render_welcome(&template, &name, &rep_name);
            let deadline = Instant::now() + Duration::from_millis(remaining as u64);
            notes.push(
                match s.wecom.send_welcome_msg(code, &WelcomeMessage { text }, deadline).await {
                    Ok(WelcomeOutcome::Sent) => "welcome sent".to_owned(),
                    Ok(WelcomeOutcome::AlreadySent) => "welcome already sent".to_owned(),
                    // Not retried: the code is single-use and about to expire.
                    Err(e) => format!("welcome not sent: {e}"),
                },
            );
        }
    }

    let profile = match profile {
        Ok(profile) => profile,
        Err(WecomError::Api {
            code: codes::INVALID_EXTERNAL_USERID | codes::NO_RELATIONSHIP,
            ..
        }) => {
            return Ok(Outcome::Ignored(format!(
                "{} is no longer a contact of {}; nothing to add{}",
                event.external_user_id,
                event.user_id,
                notes.iter().map(|n| format!("; {n}")).collect::<String>()
            )));
        }
        Err(e) => return Err(wecom_error(e)),
    };
    let mut follow = profile
        .follow_user
        .iter()
        .find(|f| f.userid == event.user_id)
        .map(FollowerInput::from)
        .unwrap_or_else(|| FollowerInput {
            userid: event.user_id.clone(),
            added_at: Some(at),
            ..Default::default()
        });
    // The lead source is the event's State: it belongs to this very add.
    if let Some(state) = event.state.as_deref().filter(|s| !s.is_empty()) {
        follow.state = state.to_owned();
    }

    let txn = begin_write(&s.db).await?;
    // An add older than the end of the same relation arrived late: the relation stays ended.
    if let Some(existing) = customers::find_by_external(&txn, &event.external_user_id).await?
        && let Some(relation) = customers::follower_of(&txn, existing.id, &event.user_id).await?
        && relation.removed_at.is_some_and(|removed| removed > at)
    {
        txn.rollback().await?;
        return Ok(Outcome::Ignored(
            "an add older than the relation's end arrived late".into(),
        ));
    }
    let contact = profile.external_contact.clone();
    let upserted = customers::upsert_contacts(&txn, &[(contact, follow.clone())], half, now_ms()).await?[0];
    let customer = customer::Entity::find_by_id(upserted.customer_id)
        .one(&txn)
        .await?
        .expect("just upserted");
    let source = channels::source_name(channel.as_ref(), event.state.as_deref());
    // A new customer from a channel with a plan enters that lead status and gets its plan.
    if upserted.customer_created
        && !half
        && let Some(status) = channel.as_ref().and_then(|c| c.follow_up_plan.as_deref())
        && deals::parse_status(status) == Some(status)
    {
        deals::set(
            &txn,
            &customer,
            Field::Status,
            Some(status.to_owned()),
            &Actor::Wecom,
            now_ms(),
        )
        .await?;
        plans::apply(&txn, &s.config.plans, &customer, status, now_ms()).await?;
    }
    // A new customer of a channel with an assignment rule is owned by whom the rule picks (the
    // rep they added stays their WeCom contact); told by `jobs::leads`.
    if upserted.customer_created
        && !half
        && let Some(rule) = channel.as_ref().and_then(|c| c.assign.as_deref())
        && let Ok(rule) = AssignRule::parse(rule)
    {
        let rules = pool::rules(&txn, &s.config).await?;
        let among = match assign::home_department(&txn, &event.user_id).await? {
            Some(department) => Among::Department(department),
            None => Among::configured(&rules.assignment),
        };
        let stages = crate::crm::stages::current(&txn, &s.config).await?;
        let to_rule = (&rule, among, rules.assignment.max_open_leads);
        if let Some((userid, method)) = assign::choose(&txn, to_rule, &stages, None).await?
            && userid != event.user_id
        {
            let reason = format!("渠道「{source}」");
            assign::assign(&txn, &Actor::Wecom, &customer, &userid, method, &reason, now_ms()).await?;
            notes.push(format!("assigned to {userid} ({method})"));
        }
    }
    let fresh = upserted.follower != FollowerChange::Updated;
    if fresh {
        let action = if half { "customer.pending" } else { "customer.added" };
        let detail = json!({ "by": event.user_id, "state": event.state, "source": source, "add_way": follow.add_way, "new_customer": upserted.customer_created });
        audit::record(
            &txn,
            &Actor::Wecom,
            action,
            Some(customer.id),
            Some(&event.user_id),
            detail,
        )
        .await?;
        let display = customers::display(&customer);
        let text = if half {
            texts::pending_customer(&display, &source)
        } else {
            let short = if customer.name.is_empty() {
                display.clone()
            } else {
                customer.name.clone()
            };
            let page = s.config.web.customer_url(&customer.external_userid);
            texts::new_customer(&display, &source, &short, page.as_deref())
        };
        let key = format!("added:{}:{}:{}", customer.id, event.user_id, row.id);
        notify::enqueue(&txn, &key, &event.user_id, &MessageBody::text(text)).await?;
    }
    notes.insert(
        0,
        format!(
            "customer {} {} for {}",
            customer.id,
            if fresh { "added" } else { "refreshed" },
            event.user_id
        ),
    );
    let note = notes.join("; ");
    if !finish_within(&txn, row, inbox::Entity::update_many(), &note).await? {
        txn.rollback().await?;
        return Err(HandlerError::Transient(
            "the row's lease ran out; the worker holding it now adds the customer".into(),
        ));
    }
    txn.commit().await?;
    s.notifier.wake();
    Ok(Outcome::Committed(note))
}

async fn edited(s: &Services, event: &ExternalContactEvent) -> Result<Outcome, HandlerError> {
    let Some(profile) = fetch_profile(s, &event.external_user_id).await? else {
        let txn = begin_write(&s.db).await?;
        let customer = customers::ensure_customer(&txn, &event.external_user_id, now_ms()).await?;
        txn.commit().await?;
        return Ok(Outcome::Processed(format!(
            "customer {} recorded; WeCom no longer shows its profile",
            customer.id
        )));
    };
    let Some(follow) = profile.follow_user.iter().find(|f| f.userid == event.user_id) else {
        return Ok(Outcome::Ignored(format!(
            "{} does not follow {} any more",
            event.user_id, event.external_user_id
        )));
    };
    let input = FollowerInput::from(follow);
    let txn = begin_write(&s.db).await?;
    let before = match customers::find_by_external(&txn, &event.external_user_id).await? {
        Some(c) => customers::follower_of(&txn, c.id, &event.user_id)
            .await?
            .map(|f| (c, f)),
        None => None,
    };
    let upserted =
        customers::upsert_contacts(&txn, &[(profile.external_contact.clone(), input)], false, now_ms()).await?[0];
    let after = customer::Entity::find_by_id(upserted.customer_id).one(&txn).await?;
    let after_relation = customers::follower_of(&txn, upserted.customer_id, &event.user_id).await?;
    // A replay (or an edit of fields we do not keep) changes nothing and is not recorded again.
    let changed = match (&before, &after, &after_relation) {
        (Some((c0, f0)), Some(c1), Some(f1)) => !same_profile(c0, c1) || !same_relation(f0, f1),
        _ => true,
    };
    if changed {
        audit::record(
            &txn,
            &Actor::Wecom,
            "customer.edited",
            Some(upserted.customer_id),
            Some(&event.user_id),
            json!({}),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(Outcome::Processed(format!(
        "customer {} {}",
        upserted.customer_id,
        if changed { "refreshed" } else { "unchanged" }
    )))
}

fn same_profile(a: &customer::Model, b: &customer::Model) -> bool {
    (
        &a.name,
        &a.corp_name,
        &a.corp_full_name,
        &a.position,
        &a.avatar,
        a.gender,
        a.contact_type,
    ) == (
        &b.name,
        &b.corp_name,
        &b.corp_full_name,
        &b.position,
        &b.avatar,
        b.gender,
        b.contact_type,
    )
}

fn same_relation(a: &follower::Model, b: &follower::Model) -> bool {
    (
        &a.remark,
        &a.description,
        &a.remark_corp_name,
        &a.remark_mobiles,
        &a.wecom_tags,
        a.removed_at,
    ) == (
        &b.remark,
        &b.description,
        &b.remark_corp_name,
        &b.remark_mobiles,
        &b.wecom_tags,
        b.removed_at,
    )
}

async fn removed(
    s: &Services,
    row: &inbox::Model,
    event: &ExternalContactEvent,
    side: RemovedBy,
) -> Result<Outcome, HandlerError> {
    let at = event_time(row);
    let by_transfer = event.source.as_deref() == Some("DELETE_BY_TRANSFER");
    let by = if by_transfer { RemovedBy::Transfer } else { side };
    let rep_name = ensure_member(s, &event.user_id).await?;
    // A customer we never saw: learn who it was while WeCom still knows (another member may follow).
    let known = customers::find_by_external(&s.db, &event.external_user_id)
        .await?
        .is_some();
    let profile = if known {
        None
    } else {
        fetch_profile(s, &event.external_user_id).await?
    };
    let tz = s.tz();

    let txn = begin_write(&s.db).await?;
    if let Some(profile) = profile
        && let Some(first) = profile.follow_user.first()
    {
        customers::upsert_contacts(
            &txn,
            &[(profile.external_contact.clone(), FollowerInput::from(first))],
            false,
            now_ms(),
        )
        .await?;
    }
    let customer = customers::ensure_customer(&txn, &event.external_user_id, now_ms()).await?;
    let closed = customers::close_follower(&txn, customer.id, &event.user_id, by, at).await?;
    if !closed {
        txn.rollback().await?;
        return Ok(Outcome::Ignored("relation already ended".into()));
    }
    let display = customers::display(&customer);
    let action = match by {
        RemovedBy::Customer => "customer.deleted_member",
        RemovedBy::Transfer => "follower.transferred",
        _ => "member.deleted_customer",
    };
    audit::record(
        &txn,
        &Actor::Wecom,
        action,
        Some(customer.id),
        Some(&event.user_id),
        json!({ "source": event.source }),
    )
    .await?;
    if by != RemovedBy::Transfer {
        let reason = match by {
            RemovedBy::Customer => format!("客户删除了{rep_name}"),
            _ => format!("{rep_name}删除了客户"),
        };
        customers::mark_at_risk(&txn, customer.id, &reason, at).await?;
    }
    if by == RemovedBy::Customer {
        let last = customers::last_follow_up(&txn, customer.id).await?;
        let stage = customer.stage.as_deref();
        let to_rep = texts::customer_left_rep(&display, stage, last.as_ref(), tz);
        notify::enqueue(
            &txn,
            &format!("lost:{}:{}:rep", customer.id, row.id),
            &event.user_id,
            &MessageBody::text(to_rep),
        )
        .await?;
        for leader in members::leaders_of(&txn, &event.user_id).await? {
            let text = texts::customer_left_leader(&display, &rep_name, stage, last.as_ref(), tz);
            notify::enqueue(
                &txn,
                &format!("lost:{}:{}:{leader}", customer.id, row.id),
                &leader,
                &MessageBody::text(text),
            )
            .await?;
        }
    }
    if by != RemovedBy::Transfer {
        check_mass_deletion(s, &txn, &event.user_id, &rep_name, at).await?;
    }
    txn.commit().await?;
    s.notifier.wake();
    Ok(Outcome::Processed(format!(
        "relation of {} to customer {} ended ({})",
        event.user_id,
        customer.id,
        by.as_str()
    )))
}

/// One alarm per rep per day once they lose more customers than the threshold.
async fn check_mass_deletion(
    s: &Services,
    txn: &sea_orm::DatabaseTransaction,
    userid: &str,
    rep_name: &str,
    at: i64,
) -> Result<(), DbErr> {
    let threshold = u64::from(s.config.customers.mass_deletion_threshold);
    let tz = s.tz();
    let lost = follower::Entity::find()
        .filter(follower::Column::Userid.eq(userid))
        .filter(follower::Column::RemovedAt.gte(start_of_day(at, tz)))
        .filter(follower::Column::RemovedBy.is_in(["member", "customer"]))
        .count(txn)
        .await?;
    if lost <= threshold {
        return Ok(());
    }
    let day = date_key(at, tz);
    if runs::try_start(txn, "mass_deletion_alert", userid, &day).await? {
        for leader in members::leaders_of(txn, userid).await? {
            let key = format!("mass-deletion:{userid}:{day}:{leader}");
            notify::enqueue(
                txn,
                &key,
                &leader,
                &MessageBody::text(texts::mass_deletion(rep_name, lost)),
            )
            .await?;
        }
        runs::finish(
            txn,
            "mass_deletion_alert",
            userid,
            &day,
            RunStatus::Done,
            &format!("{lost} customers lost"),
        )
        .await?;
    }
    Ok(())
}

async fn transfer_failed(
    s: &Services,
    row: &inbox::Model,
    event: &ExternalContactEvent,
) -> Result<Outcome, HandlerError> {
    let txn = s.db.begin().await?;
    let customer = customers::ensure_customer(&txn, &event.external_user_id, now_ms()).await?;
    let text = texts::transfer_failed(&customers::display(&customer), event.fail_reason.as_deref());
    let key = format!("transfer-fail:{}:{}", customer.id, row.id);
    if notify::enqueue(&txn, &key, &event.user_id, &MessageBody::text(text))
        .await?
        .is_empty()
    {
        txn.rollback().await?;
        return Ok(Outcome::Ignored("already handled".into()));
    }
    audit::record(
        &txn,
        &Actor::Wecom,
        "transfer.failed",
        Some(customer.id),
        Some(&event.user_id),
        json!({ "reason": event.fail_reason }),
    )
    .await?;
    txn.commit().await?;
    s.notifier.wake();
    Ok(Outcome::Processed(format!(
        "transfer of customer {} to {} failed: {:?}",
        customer.id, event.user_id, event.fail_reason
    )))
}

//! Pushing due reminders, exactly once. Every `serve` instance runs a [`Dispatcher`]: it claims due
//! reminders with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional update on
//! SQLite), writes the message — one per reminder, or one for several due for the same rep at once
//! — and queues it in the outbox in the same transaction that marks the reminders queued. The outbox
//! sends it with WeCom's duplicate check on (a crash between the send and its record cannot push
//! twice), then [`sent`] records WeCom's msgid on the reminders; a recipient WeCom refuses has the
//! reminders re-routed to the customer's owner, or marked failed with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha1::{Digest, Sha1};
use tokio_util::sync::CancellationToken;

use crate::bot::command::Lang;
use crate::bot::replies;
use crate::crm::audit::{self, Actor};
use crate::crm::customers;
use crate::db::claim::{self, ClaimColumns, Lease};
use crate::db::entity::{customer, kv_state, member, reminder};
use crate::db::{begin_write, now_ms};
use crate::metrics::Metrics;
use crate::notify::{self, Payload, ReminderRef};
use crate::services::Services;
use crate::texts::{preview, short_day};
use crate::wecom::api::MessageBody;

const CLAIM: ClaimColumns<reminder::Column> = ClaimColumns {
    id: reminder::Column::Id,
    status: reminder::Column::DeliveryState,
    next_attempt_at: reminder::Column::RetryAt,
    locked_by: reminder::Column::ClaimedBy,
    locked_until: reminder::Column::LeaseUntil,
    attempts: reminder::Column::Attempts,
    ready: "pending",
    claimed: "claimed",
    order: &[
        reminder::Column::OwnerUserid,
        reminder::Column::DueAt,
        reminder::Column::Id,
    ],
};

/// A reminder is shown as late once it is this much past due.
const LATE_AFTER_MS: i64 = 5 * 60_000;
/// How often an instance records that its dispatcher is alive (for `wecom-scrm status`).
const HEARTBEAT_EVERY_MS: i64 = 5_000;

pub struct Dispatcher {
    s: Arc<Services>,
    instance: String,
}

impl Dispatcher {
    pub fn new(s: Arc<Services>, instance: String) -> Self {
        Self { s, instance }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.s.config.jobs.poll_interval_ms.max(1));
        let mut last_heartbeat = 0;
        while !shutdown.is_cancelled() {
            match self.dispatch_due().await {
                Ok(_) => {
                    self.s.metrics.dispatcher_round_done();
                    let now = now_ms();
                    if now - last_heartbeat >= HEARTBEAT_EVERY_MS {
                        last_heartbeat = now;
                        if let Err(e) = heartbeat(&self.s.db, &self.instance, now).await {
                            tracing::warn!(error = %e, "dispatcher heartbeat not recorded");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reminder dispatcher cannot reach the database; will retry"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Queues every due reminder; returns how many.
    pub async fn dispatch_due(&self) -> Result<usize, DbErr> {
        let s = &self.s;
        let lease_ms = i64::try_from(s.config.jobs.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let now = now_ms();
            let lease = Lease {
                owner: &self.instance,
                duration_ms: lease_ms,
                batch: s.config.jobs.claim_batch,
            };
            let due = Condition::all()
                .add(reminder::Column::Status.eq("open"))
                .add(reminder::Column::DueAt.lte(now));
            let claimed = claim::claim_where::<reminder::Entity>(&s.db, &CLAIM, lease, now, due).await?;
            if claimed.is_empty() {
                break;
            }
            // Claimed by owner, so a rep's reminders due together are merged into few messages.
            let mut by_owner: BTreeMap<String, Vec<reminder::Model>> = BTreeMap::new();
            for r in claimed {
                by_owner.entry(r.owner_userid.clone()).or_default().push(r);
            }
            for (owner, mut reminders) in by_owner {
                reminders.sort_by_key(|r| (r.due_at, r.id));
                for chunk in reminders.chunks(s.config.jobs.merge_max.max(1)) {
                    total += self.queue(&owner, chunk, now).await?;
                }
            }
            s.notifier.wake();
        }
        Ok(total)
    }

    /// Writes the message for `chunk` and queues it, marking the reminders queued — one transaction.
    async fn queue(&self, owner: &str, chunk: &[reminder::Model], now: i64) -> Result<usize, DbErr> {
        let s = &self.s;
        let body = render(s, chunk, now).await?;
        let refs: Vec<ReminderRef> = chunk
            .iter()
            .map(|r| ReminderRef {
                id: r.id,
                due_at: r.due_at,
            })
            .collect();
        let identity: String = refs.iter().map(|r| format!("{}@{},", r.id, r.due_at)).collect();
        let digest: String = Sha1::digest(identity.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let txn = begin_write(&s.db).await?;
        let ids: Vec<i64> = refs.iter().map(|r| r.id).collect();
        let updated = reminder::Entity::update_many()
            .col_expr(reminder::Column::DeliveryState, Expr::val("queued"))
            .col_expr(reminder::Column::UpdatedAt, Expr::val(now))
            .filter(reminder::Column::Id.is_in(ids))
            .filter(reminder::Column::ClaimedBy.eq(self.instance.as_str()))
            .filter(reminder::Column::DeliveryState.eq("claimed"))
            .exec(&txn)
            .await?
            .rows_affected;
        if updated as usize != chunk.len() {
            // The lease ran out and another instance took some of them: leave these to it.
            txn.rollback().await?;
            return Ok(0);
        }
        notify::enqueue_payload(
            &txn,
            &format!("reminders:{digest}"),
            owner,
            &Payload {
                body,
                reminders: refs,
                numbered: Vec::new(),
            },
        )
        .await?;
        txn.commit().await?;
        Metrics::add(&s.metrics.reminders_queued, chunk.len() as u64);
        Ok(chunk.len())
    }
}

async fn heartbeat(db: &impl ConnectionTrait, instance: &str, now: i64) -> Result<(), DbErr> {
    kv_state::Entity::insert(kv_state::ActiveModel {
        key: Set(format!("dispatcher:{instance}")),
        value: Set(now.to_string()),
        updated_at: Set(now),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(kv_state::Column::Key)
            .update_columns([kv_state::Column::Value, kv_state::Column::UpdatedAt])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// The push for one or several reminders of one rep, as markdown.
async fn render(s: &Services, chunk: &[reminder::Model], now: i64) -> Result<MessageBody, DbErr> {
    let tz = s.tz();
    let late = |r: &reminder::Model| {
        if now - r.due_at > LATE_AFTER_MS {
            format!("（{}）", replies::overdue(r.due_at, now, Lang::Zh))
        } else {
            String::new()
        }
    };
    let mut customers_by_id = BTreeMap::new();
    for id in chunk.iter().filter_map(|r| r.customer_id) {
        if let Some(c) = customer::Entity::find_by_id(id).one(&s.db).await? {
            customers_by_id.insert(id, c);
        }
    }
    if let [r] = chunk {
        let mut lines = vec![format!("**⏰ 提醒：{}**", r.text)];
        if let Some(c) = r.customer_id.and_then(|id| customers_by_id.get(&id)) {
            let stage = c.stage.clone().unwrap_or_else(|| "未设置".into());
            lines.push(format!("> 客户：{} · 阶段：{stage}", customers::display(c)));
            let last = customers::last_follow_up(&s.db, c.id).await?;
            let last = last.map_or_else(
                || "暂无".to_owned(),
                |f| format!("{} {}", short_day(f.created_at, tz), preview(&f.content, 40)),
            );
            lines.push(format!("> 最近跟进：{last}"));
        }
        lines.push(format!("> 时间：{}{}", replies::when(r.due_at, tz, Lang::Zh), late(r)));
        lines.push("回复「完成 1」，或「推迟 1 明天9点」".into());
        return Ok(MessageBody::markdown(lines.join("\n")));
    }
    let mut lines = vec![format!("**⏰ {} 条提醒到期**", chunk.len())];
    for (i, r) in chunk.iter().enumerate() {
        let who = r
            .customer_id
            .and_then(|id| customers_by_id.get(&id))
            .map(|c| format!(" · {}", customers::display(c)))
            .unwrap_or_default();
        lines.push(format!(
            "{}. {}{who} · {}{}",
            i + 1,
            replies::when_near(r.due_at, now, tz, Lang::Zh),
            r.text,
            late(r)
        ));
    }
    lines.push("回复「完成 序号」，或「推迟 序号 明天9点」".into());
    Ok(MessageBody::markdown(lines.join("\n")))
}

/// Right before sending: are the reminders still open, at the same time, for this rep? If not the
/// message is stale; those still valid go back to be written again.
pub async fn still_due(db: &impl ConnectionTrait, refs: &[ReminderRef], recipient: &str) -> Result<bool, DbErr> {
    let rows = reminder::Entity::find()
        .filter(reminder::Column::Id.is_in(refs.iter().map(|r| r.id)))
        .all(db)
        .await?;
    let valid = |r: &ReminderRef| {
        rows.iter().any(|row| {
            row.id == r.id
                && row.status == "open"
                && row.due_at == r.due_at
                && row.owner_userid == recipient
                && row.delivery_state == "queued"
        })
    };
    if refs.iter().all(valid) {
        return Ok(true);
    }
    let requeue: Vec<i64> = refs.iter().filter(|r| valid(r)).map(|r| r.id).collect();
    if !requeue.is_empty() {
        reminder::Entity::update_many()
            .col_expr(reminder::Column::DeliveryState, Expr::val("pending"))
            .filter(reminder::Column::Id.is_in(requeue))
            .exec(db)
            .await?;
    }
    Ok(false)
}

/// The push went out: the reminders are sent, with WeCom's msgid.
pub async fn sent(
    db: &impl ConnectionTrait,
    metrics: &Metrics,
    refs: &[ReminderRef],
    msgid: &str,
) -> Result<(), DbErr> {
    let now = now_ms();
    reminder::Entity::update_many()
        .col_expr(reminder::Column::DeliveryState, Expr::val("sent"))
        .col_expr(reminder::Column::SentAt, Expr::val(now))
        .col_expr(reminder::Column::Msgid, Expr::val(msgid))
        .col_expr(reminder::Column::LastError, Expr::val(Option::<String>::None))
        .filter(reminder::Column::Id.is_in(refs.iter().map(|r| r.id)))
        .filter(reminder::Column::DeliveryState.eq("queued"))
        .exec(db)
        .await?;
    Metrics::add(&metrics.reminders_sent, refs.len() as u64);
    for r in refs {
        Metrics::add(&metrics.reminder_lag_ms_sum, u64::try_from(now - r.due_at).unwrap_or(0));
    }
    Metrics::add(&metrics.reminder_lag_count, refs.len() as u64);
    Ok(())
}

/// The push failed for good. A recipient WeCom refuses (left, outside the app): each reminder on a
/// customer goes to that customer's current owner, if someone else and still here; the rest are
/// marked failed with the reason, which `todo` shows.
pub async fn failed(
    db: &impl ConnectionTrait,
    metrics: &Metrics,
    refs: &[ReminderRef],
    recipient: &str,
    reason: &str,
    invalid_recipient: bool,
) -> Result<(), DbErr> {
    let now = now_ms();
    for r in refs {
        let Some(row) = reminder::Entity::find_by_id(r.id).one(db).await? else {
            continue;
        };
        let mut new_owner = None;
        if invalid_recipient
            && let Some(cid) = row.customer_id
            && let Some(owner) = customer::Entity::find_by_id(cid)
                .one(db)
                .await?
                .and_then(|c| c.owner_userid)
            && owner != recipient
            && member::Entity::find_by_id(owner.clone())
                .one(db)
                .await?
                .is_some_and(|m| m.active)
        {
            new_owner = Some(owner);
        }
        let update = reminder::Entity::update_many()
            .filter(reminder::Column::Id.eq(r.id))
            .col_expr(reminder::Column::UpdatedAt, Expr::val(now));
        match new_owner {
            Some(owner) => {
                update
                    .col_expr(reminder::Column::OwnerUserid, Expr::val(owner.as_str()))
                    .col_expr(reminder::Column::DeliveryState, Expr::val("pending"))
                    .col_expr(reminder::Column::RetryAt, Expr::val(0))
                    .col_expr(
                        reminder::Column::LastError,
                        Expr::val(format!("re-routed from {recipient}: {reason}")),
                    )
                    .exec(db)
                    .await?;
                Metrics::add(&metrics.reminders_rerouted, 1);
                let detail =
                    serde_json::json!({ "reminder_id": r.id, "from": recipient, "to": owner, "reason": reason });
                audit::record(
                    db,
                    &Actor::System,
                    "reminder.rerouted",
                    row.customer_id,
                    Some(&owner),
                    detail,
                )
                .await?;
            }
            None => {
                update
                    .col_expr(reminder::Column::DeliveryState, Expr::val("failed"))
                    .col_expr(reminder::Column::LastError, Expr::val(reason))
                    .exec(db)
                    .await?;
                Metrics::add(&metrics.reminders_failed, 1);
            }
        }
    }
    Ok(())
}

//! The reminders a push carries move with its message, in the same transactions: right before the
//! send, the push goes only if every reminder still holds (open, due at the same time, for the
//! recipient, queued on this very message); its outcome then settles them — sent, failed with the
//! reason, re-routed to the customer's owner when WeCom refuses the rep, or back to pending when the
//! push was dropped.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};

use crate::bot::session::{List, Sessions};
use crate::crm::audit::{self, Actor};
use crate::db::entity::reminder::{DeliveryState, ReminderStatus};
use crate::db::entity::{customer, member, reminder};
use crate::metrics::Metrics;
use crate::notify::{DeliveryHooks, Message, Outcome, Verdict};

/// The [`DeliveryHooks`] of reminder pushes (and of any message that numbers reminders in chat).
pub struct ReminderDeliveries {
    metrics: Arc<Metrics>,
    sessions: Sessions,
}

impl ReminderDeliveries {
    pub fn new(metrics: Arc<Metrics>, sessions: Sessions) -> Self {
        Self { metrics, sessions }
    }
}

/// The reminders that ride on `message_id` right now.
fn linked(message_id: i64) -> sea_orm::UpdateMany<reminder::Entity> {
    reminder::Entity::update_many()
        .filter(reminder::Column::OutboxId.eq(message_id))
        .filter(reminder::Column::DeliveryState.eq(DeliveryState::Queued))
}

impl DeliveryHooks for ReminderDeliveries {
    fn check<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        message: &'a Message,
        _now: i64,
    ) -> BoxFuture<'a, Result<Verdict, DbErr>> {
        Box::pin(async move {
            let refs = &message.payload.reminders;
            if refs.is_empty() {
                return Ok(Verdict::Send);
            }
            let rows = reminder::Entity::find()
                .filter(reminder::Column::Id.is_in(refs.iter().map(|r| r.id)))
                .all(txn)
                .await?;
            let holds = refs.iter().all(|r| {
                rows.iter().any(|row| {
                    row.id == r.id
                        && row.status == ReminderStatus::Open
                        && row.due_at == r.due_at
                        && row.owner_userid == message.row.recipient
                        && row.delivery_state == DeliveryState::Queued
                        && row.outbox_id == Some(message.row.id)
                })
            });
            Ok(if holds {
                Verdict::Send
            } else {
                Verdict::Drop("its reminders changed before it was sent".into())
            })
        })
    }

    fn settle<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        message: &'a Message,
        outcome: &'a Outcome,
        now: i64,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let refs = &message.payload.reminders;
            if refs.is_empty() {
                return Ok(());
            }
            let id = message.row.id;
            match outcome {
                Outcome::Sent { msgid } => {
                    let sent = linked(id)
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Sent))
                        .col_expr(reminder::Column::SentAt, Expr::val(now))
                        .col_expr(reminder::Column::Msgid, Expr::val(msgid.as_str()))
                        .col_expr(reminder::Column::LastError, Expr::val(Option::<String>::None))
                        .col_expr(reminder::Column::UpdatedAt, Expr::val(now))
                        .exec(txn)
                        .await?
                        .rows_affected;
                    self.metrics.reminders_sent.inc_by(sent);
                    for r in refs {
                        self.metrics.push_delay.observe((now - r.due_at).max(0) as f64 / 1000.0);
                    }
                }
                Outcome::Retry { .. } => {}
                Outcome::Dropped { .. } => {
                    // Still valid ones are written again by the next round (without the others).
                    linked(id)
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Pending))
                        .col_expr(reminder::Column::OutboxId, Expr::val(Option::<i64>::None))
                        .col_expr(reminder::Column::UpdatedAt, Expr::val(now))
                        .exec(txn)
                        .await?;
                }
                Outcome::Failed {
                    reason,
                    recipient_refused,
                } => {
                    self.failed(txn, message, reason, *recipient_refused, now).await?;
                }
            }
            Ok(())
        })
    }

    fn committed<'a>(&'a self, message: &'a Message, outcome: &'a Outcome, _now: i64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let list = message.payload.numbered_list();
            if !matches!(outcome, Outcome::Sent { .. }) || list.is_empty() {
                return;
            }
            // The pushed reminders become the member's numbered list: `完成 1` answers the push.
            let userid = &message.row.recipient;
            let mut loaded = self.sessions.load(userid).await;
            loaded.session.list = Some(List::Reminders(list));
            loaded.session.pending = None;
            self.sessions.save(userid, &loaded.session).await;
        })
    }
}

impl ReminderDeliveries {
    /// The push failed for good. A recipient WeCom refuses (left, outside the app): each reminder on
    /// a customer goes to that customer's current owner, if someone else and still here — a new
    /// push, for a new recipient; the rest are failed with the reason, which `待办` shows.
    async fn failed(
        &self,
        txn: &DatabaseTransaction,
        message: &Message,
        reason: &str,
        recipient_refused: bool,
        now: i64,
    ) -> Result<(), DbErr> {
        let recipient = message.row.recipient.as_str();
        let carried = reminder::Entity::find()
            .filter(reminder::Column::OutboxId.eq(message.row.id))
            .filter(reminder::Column::DeliveryState.eq(DeliveryState::Queued))
            .all(txn)
            .await?;
        for row in carried {
            let new_owner = match (recipient_refused, row.customer_id) {
                (true, Some(customer_id)) => successor(txn, customer_id, recipient).await?,
                _ => None,
            };
            let update = linked(message.row.id)
                .filter(reminder::Column::Id.eq(row.id))
                .col_expr(reminder::Column::UpdatedAt, Expr::val(now));
            match new_owner {
                Some(owner) => {
                    update
                        .col_expr(reminder::Column::OwnerUserid, Expr::val(owner.as_str()))
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Pending))
                        .col_expr(reminder::Column::OutboxId, Expr::val(Option::<i64>::None))
                        .col_expr(reminder::Column::RetryAt, Expr::val(0))
                        .col_expr(
                            reminder::Column::LastError,
                            Expr::val(format!("re-routed from {recipient}: {reason}")),
                        )
                        .exec(txn)
                        .await?;
                    self.metrics.reminders_rerouted.inc_by(1);
                    let detail =
                        serde_json::json!({ "reminder_id": row.id, "from": recipient, "to": owner, "reason": reason });
                    audit::record(
                        txn,
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
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Failed))
                        .col_expr(reminder::Column::LastError, Expr::val(reason))
                        .exec(txn)
                        .await?;
                    self.metrics.reminders_failed.inc_by(1);
                }
            }
        }
        Ok(())
    }
}

/// Who takes a reminder on `customer_id` that `refused` cannot receive: the customer's owner, when
/// that is someone else who is still here.
async fn successor(txn: &DatabaseTransaction, customer_id: i64, refused: &str) -> Result<Option<String>, DbErr> {
    let Some(owner) = customer::Entity::find_by_id(customer_id)
        .one(txn)
        .await?
        .and_then(|c| c.owner_userid)
        .filter(|owner| owner != refused)
    else {
        return Ok(None);
    };
    let active = member::Entity::find_by_id(owner.clone())
        .one(txn)
        .await?
        .is_some_and(|m| m.active);
    Ok(active.then_some(owner))
}

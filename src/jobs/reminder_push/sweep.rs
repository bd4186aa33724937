//! The sweeper: once per dispatcher poll it finds reminders that break the delivery invariant — left
//! by a crash in an older version, a hand edit, or a claim whose holder died — and puts each back
//! into a state the machine continues from. A queued reminder without a live message takes the
//! outcome of the message that carried it (sent, failed) or goes back to pending; a claim whose
//! lease ran out goes back to pending. Every repair is one conditional update, counted in
//! `/metrics` (`scrm_deliveries_repaired_total`).

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::db::entity::outbox::{self, MessageState};
use crate::db::entity::reminder::{self, DeliveryState};

/// Repairs per sweep at most (the rest wait for the next poll).
const BATCH: u64 = 500;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Queued without a live message, and the message had been delivered: now sent.
    pub sent: u64,
    /// Queued without a live message, and the message had failed: now failed with its reason.
    pub failed: u64,
    /// Queued without a live message (dropped, or none): pending again.
    pub requeued: u64,
    /// Claimed by a dispatcher whose lease ran out: pending again.
    pub expired_claims: u64,
}

impl SweepReport {
    pub fn total(&self) -> u64 {
        self.sent + self.failed + self.requeued + self.expired_claims
    }
}

/// Queued reminders that no live message carries.
fn orphaned() -> Condition {
    let live_message = Query::select()
        .expr(Expr::val(1))
        .from(outbox::Entity)
        .and_where(
            Expr::col((outbox::Entity, outbox::Column::Id)).equals((reminder::Entity, reminder::Column::OutboxId)),
        )
        .and_where(Expr::col((outbox::Entity, outbox::Column::Status)).is_in(MessageState::LIVE))
        .to_owned();
    Condition::all()
        .add(reminder::Column::DeliveryState.eq(DeliveryState::Queued))
        .add(Expr::exists(live_message).not())
}

pub async fn sweep(db: &impl ConnectionTrait, now: i64) -> Result<SweepReport, DbErr> {
    let mut report = SweepReport::default();
    let stranded = reminder::Entity::find()
        .filter(orphaned())
        .order_by_asc(reminder::Column::Id)
        .limit(BATCH)
        .all(db)
        .await?;
    if !stranded.is_empty() {
        let carriers = outbox::Entity::find()
            .filter(outbox::Column::Id.is_in(stranded.iter().filter_map(|r| r.outbox_id)))
            .all(db)
            .await?;
        for r in stranded {
            let carrier = r.outbox_id.and_then(|id| carriers.iter().find(|m| m.id == id));
            let mut update = reminder::Entity::update_many()
                .filter(reminder::Column::Id.eq(r.id))
                .filter(orphaned())
                .col_expr(reminder::Column::UpdatedAt, Expr::val(now));
            let counter = match carrier.map(|m| m.status) {
                Some(MessageState::Sent) => {
                    let m = carrier.expect("matched above");
                    update = update
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Sent))
                        .col_expr(reminder::Column::SentAt, Expr::val(m.sent_at.unwrap_or(now)))
                        .col_expr(reminder::Column::Msgid, Expr::val(m.msgid.clone()));
                    &mut report.sent
                }
                Some(MessageState::Failed) => {
                    let m = carrier.expect("matched above");
                    let reason = m.last_error.clone().unwrap_or_else(|| "the push failed".into());
                    update = update
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Failed))
                        .col_expr(reminder::Column::LastError, Expr::val(reason));
                    &mut report.failed
                }
                _ => {
                    update = update
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Pending))
                        .col_expr(reminder::Column::OutboxId, Expr::val(Option::<i64>::None));
                    &mut report.requeued
                }
            };
            *counter += update.exec(db).await?.rows_affected;
        }
    }
    report.expired_claims = reminder::Entity::update_many()
        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Pending))
        .col_expr(reminder::Column::ClaimedBy, Expr::val(Option::<String>::None))
        .col_expr(reminder::Column::LeaseUntil, Expr::val(Option::<i64>::None))
        .filter(reminder::Column::DeliveryState.eq(DeliveryState::Claimed))
        .filter(reminder::Column::LeaseUntil.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    if report.total() > 0 {
        tracing::warn!(
            ?report,
            "repaired reminder deliveries that broke the delivery invariant"
        );
    }
    Ok(report)
}

/// A delivery that has been claimed or queued for long, for `wecom-scrm status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub reminder_id: i64,
    pub owner: String,
    pub state: DeliveryState,
    /// Since when (unix ms).
    pub since: i64,
    pub message_id: Option<i64>,
    pub last_error: Option<String>,
}

/// Reminders claimed or queued since before `before` (at most `limit`, the oldest first).
pub async fn stuck(db: &impl ConnectionTrait, before: i64, lease_ms: i64, limit: u64) -> Result<Vec<Stuck>, DbErr> {
    // A claim's start is its lease's end less the lease; a queued reminder's is its last update.
    let rows = reminder::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(reminder::Column::DeliveryState.eq(DeliveryState::Queued))
                        .add(reminder::Column::UpdatedAt.lt(before)),
                )
                .add(
                    Condition::all()
                        .add(reminder::Column::DeliveryState.eq(DeliveryState::Claimed))
                        .add(reminder::Column::LeaseUntil.lt(before + lease_ms)),
                ),
        )
        .order_by_asc(reminder::Column::UpdatedAt)
        .limit(limit)
        .all(db)
        .await?;
    let mut stuck = Vec::with_capacity(rows.len());
    for r in rows {
        let since = match r.delivery_state {
            DeliveryState::Claimed => r.lease_until.unwrap_or(r.updated_at) - lease_ms,
            _ => r.updated_at,
        };
        let last_error = match r.outbox_id {
            Some(id) => outbox::Entity::find_by_id(id).one(db).await?.and_then(|m| m.last_error),
            None => r.last_error.clone(),
        };
        stuck.push(Stuck {
            reminder_id: r.id,
            owner: r.owner_userid,
            state: r.delivery_state,
            since,
            message_id: r.outbox_id,
            last_error,
        });
    }
    Ok(stuck)
}

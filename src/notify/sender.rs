//! The sender: one per instance; instances share the queue safely. A message goes through three
//! steps, each a transaction of its own:
//!
//! 1. [`Notifier::prepare`] renews the lease (a message whose lease ran out belongs to whoever took
//!    it over), asks the hooks whether what it says still holds (before its first attempt only: an
//!    attempted message may have arrived, and is retried as it is), refuses a resend WeCom could no
//!    longer recognise as the same message, waits for room in the member's windows, and stamps the
//!    attempt;
//! 2. [`Notifier::attempt`] sends it, with WeCom's duplicate check over the whole retry horizon;
//! 3. [`Notifier::settle`] records the outcome, and with it (through the hooks) the reminders the
//!    message carries.
//!
//! A crash between two steps leaves a message `sending` under a lease that runs out; whoever takes
//! it over starts again at step 1, and WeCom's duplicate check drops the resend of a message the
//! crashed sender had already delivered. The steps are public so that a simulation can interleave
//! senders and crash them between any two.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::distinct;
use super::limit::{self, MemberWindows, SEND_WITHIN};
use super::{DeliveryHooks, Message, Outcome, Payload, Verdict};
use crate::clock::{Backoff, Clock};
use crate::config::OutboxConfig;
use crate::db::begin_write;
use crate::db::claim::{self, ClaimColumns, Lease};
use crate::db::entity::outbox::{self, MessageState};
use crate::metrics::Metrics;
use crate::wecom::api::{WecomClient, WecomError, codes};

const CLAIM: ClaimColumns<outbox::Column, MessageState> = ClaimColumns {
    id: outbox::Column::Id,
    status: outbox::Column::Status,
    next_attempt_at: outbox::Column::NextAttemptAt,
    locked_by: outbox::Column::LockedBy,
    locked_until: outbox::Column::LockedUntil,
    attempts: outbox::Column::Attempts,
    ready: MessageState::Pending,
    claimed: MessageState::Sending,
    order: &[],
};

/// WeCom keeps a duplicate-check window for 4 hours at most.
const MAX_DUPLICATE_WINDOW: Duration = Duration::from_secs(4 * 3600);
/// Messages claimed at once.
const BATCH: u64 = 32;

/// Sends queued messages. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    client: WecomClient,
    config: OutboxConfig,
    windows: MemberWindows,
    wake: Notify,
    instance: String,
    metrics: Arc<Metrics>,
    hooks: Arc<dyn DeliveryHooks>,
    clock: Clock,
}

/// A message that passed its checks and may be sent now — within [`SEND_WITHIN`] of them.
#[derive(Debug)]
pub struct Ready {
    message: Message,
    /// When the checks passed and the attempt was stamped.
    stamped: i64,
    /// Whether this is the message's first attempt (nothing of it can have reached WeCom yet).
    first: bool,
}

/// What [`Notifier::prepare`] made of a claimed message.
#[derive(Debug)]
pub enum Prepared {
    Ready(Box<Ready>),
    /// Settled without a send (dropped, failed, or waiting for room), recorded.
    Settled(Outcome),
    /// Another sender holds it now.
    LeaseLost,
}

/// A send and what WeCom answered.
#[derive(Debug)]
pub struct Attempted {
    message: Message,
    result: Result<String, WecomError>,
    stamped: i64,
    first: bool,
}

impl Notifier {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        client: WecomClient,
        config: OutboxConfig,
        windows: MemberWindows,
        instance: String,
        metrics: Arc<Metrics>,
        hooks: Arc<dyn DeliveryHooks>,
        clock: Clock,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                client,
                config,
                windows,
                wake: Notify::new(),
                instance,
                metrics,
                hooks,
                clock,
            }),
        }
    }

    /// This sender's name in leases.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Tells the sender that messages were queued (after the transaction committed).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Wakes the sender once `delay` has passed (a message queued to be due then).
    pub fn wake_after(&self, delay: Duration) {
        if delay.is_zero() {
            return self.wake();
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.wake.notify_one();
        });
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(Ord::max(self.inner.config.poll_interval_ms, 1));
        while !shutdown.is_cancelled() {
            if let Err(e) = self.deliver_due(&shutdown).await {
                tracing::warn!(error = %e, "outbox cannot reach the database; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Sends every due message; returns how many were handled (sent, rescheduled, failed, dropped).
    pub async fn deliver_due(&self, shutdown: &CancellationToken) -> Result<usize, DbErr> {
        self.deliver_where(None, shutdown).await
    }

    /// Sends the messages `ids` that are due (e.g. what one command queued), and no others.
    pub async fn deliver_only(&self, ids: &[i64]) -> Result<usize, DbErr> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.deliver_where(Some(ids), &CancellationToken::new()).await
    }

    async fn deliver_where(&self, only: Option<&[i64]>, shutdown: &CancellationToken) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let claimed = self.claim(only).await?;
            if claimed.is_empty() {
                return Ok(total);
            }
            // A short batch took everything due: no need to ask again (a message queued meanwhile
            // wakes the sender anew).
            let more_due = claimed.len() as u64 == BATCH;
            total += self.deliver_batch(claimed, shutdown).await?;
            if shutdown.is_cancelled() || !more_due {
                return Ok(total);
            }
        }
    }

    /// Claims due messages (among `only`, when given), oldest first.
    pub async fn claim(&self, only: Option<&[i64]>) -> Result<Vec<outbox::Model>, DbErr> {
        let inner = &self.inner;
        let lease = Lease {
            owner: &inner.instance,
            duration_ms: self.lease_ms(),
            batch: BATCH,
        };
        let mut within = Condition::all();
        if let Some(ids) = only {
            within = within.add(outbox::Column::Id.is_in(ids.iter().copied()));
        }
        claim::claim_where::<outbox::Entity, MessageState>(&inner.db, &CLAIM, lease, inner.clock.now_ms(), within).await
    }

    /// Delivers claimed messages: recipients side by side (the API client caps calls in flight),
    /// each recipient's in the order they were queued. Returns how many were handled; what shutdown
    /// or a lost lease left unhandled is given back.
    pub async fn deliver_batch(
        &self,
        claimed: Vec<outbox::Model>,
        shutdown: &CancellationToken,
    ) -> Result<usize, DbErr> {
        let mut by_recipient: BTreeMap<String, Vec<outbox::Model>> = BTreeMap::new();
        for row in claimed {
            by_recipient.entry(row.recipient.clone()).or_default().push(row);
        }
        let mut tasks = JoinSet::new();
        for rows in by_recipient.into_values() {
            let (this, shutdown) = (self.clone(), shutdown.clone());
            tasks.spawn(async move { this.deliver_in_order(rows, &shutdown).await });
        }
        let (mut total, mut left, mut failure) = (0, Vec::new(), None);
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("a delivery task does not panic") {
                Ok((delivered, undelivered)) => {
                    total += delivered;
                    left.extend(undelivered);
                }
                Err(e) => failure = Some(e),
            }
        }
        self.give_back(&left).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Gives claimed messages back untouched (still ours, not attempted), ready at once.
    pub async fn give_back(&self, ids: &[i64]) -> Result<(), DbErr> {
        claim::release::<outbox::Entity, MessageState>(&self.inner.db, &CLAIM, &self.inner.instance, ids).await
    }

    /// One recipient's messages in order; returns how many were handled and the ids left. A lost
    /// lease stops the recipient's run: its later messages are given back rather than overtaking.
    async fn deliver_in_order(
        &self,
        rows: Vec<outbox::Model>,
        shutdown: &CancellationToken,
    ) -> Result<(usize, Vec<i64>), DbErr> {
        let mut delivered = 0;
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            if !self.deliver_one(row).await? {
                break;
            }
            delivered += 1;
            if shutdown.is_cancelled() {
                break;
            }
        }
        Ok((delivered, rows.map(|r| r.id).collect()))
    }

    /// Prepares, sends and settles one claimed message; false when its lease was lost.
    pub async fn deliver_one(&self, row: outbox::Model) -> Result<bool, DbErr> {
        match self.prepare(row).await? {
            Prepared::Ready(ready) => {
                let attempted = self.attempt(ready).await;
                self.settle(attempted).await
            }
            Prepared::Settled(_) => Ok(true),
            Prepared::LeaseLost => Ok(false),
        }
    }

    /// Step 1, one transaction: lease, what the message says, WeCom's duplicate window, the
    /// member's windows, then the attempt stamped.
    pub async fn prepare(&self, row: outbox::Model) -> Result<Prepared, DbErr> {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let payload = match Payload::parse(&row.body) {
            Ok(payload) => payload,
            Err(e) => {
                let message = Message {
                    row,
                    payload: Payload::of(crate::wecom::api::MessageBody::text("")),
                };
                let outcome = Outcome::Failed {
                    reason: format!("unreadable message body: {e}"),
                    recipient_refused: false,
                };
                return self.settle_without_send(message, outcome, now).await;
            }
        };
        let mut message = Message { row, payload };
        let txn = begin_write(&inner.db).await?;
        if !self.renew(&txn, message.row.id, now).await? {
            txn.rollback().await?;
            return Ok(Prepared::LeaseLost);
        }
        // A message attempted before may have reached WeCom: it goes again exactly as it was, so
        // that WeCom recognises the copy — never dropped or replaced for what changed since, which
        // could deliver its reminders twice. Only a message never attempted is checked.
        let verdict = match message.row.first_attempt_at {
            None => inner.hooks.check(&txn, &message, now).await?,
            Some(_) => Verdict::Send,
        };
        let outcome = if let Verdict::Drop(reason) = verdict {
            Some(Outcome::Dropped { reason })
        } else if let Some(first) = message.row.first_attempt_at
            && now + self.lease_ms() > first + millis(self.duplicate_window())
        {
            Some(Outcome::Failed {
                reason: format!(
                    "not resent: its first attempt was {} min ago, longer than WeCom's duplicate check covers, \
                     so a resend could deliver it twice",
                    (now - first) / 60_000
                ),
                recipient_refused: false,
            })
        } else {
            limit::wait_needed(&txn, &message.row.recipient, message.row.id, now, inner.windows)
                .await?
                .map(|after| Outcome::Retry { after, error: None })
        };
        if let Some(outcome) = outcome {
            if !self.record(&txn, &message, &outcome, now).await? {
                txn.rollback().await?;
                return Ok(Prepared::LeaseLost);
            }
            txn.commit().await?;
            self.after_commit(&message, &outcome, now).await;
            return Ok(Prepared::Settled(outcome));
        }
        let mut stamp = outbox::Entity::update_many()
            .col_expr(outbox::Column::AttemptedAt, Expr::val(now))
            .col_expr(
                outbox::Column::FirstAttemptAt,
                Expr::col(outbox::Column::FirstAttemptAt).if_null(now),
            )
            .filter(outbox::Column::Id.eq(message.row.id));
        let first = message.row.first_attempt_at.is_none();
        if first {
            // Under the member's send lock (taken by `wait_needed`): no other message to them can
            // take the same body meanwhile.
            let since = now - millis(self.duplicate_window());
            let (row, body) = (&message.row, &mut message.payload.body);
            let (digest, varied) = distinct::make_distinct(&txn, row.id, &row.recipient, since, body).await?;
            stamp = stamp.col_expr(outbox::Column::SentDigest, Expr::val(digest));
            if varied {
                let stored = serde_json::to_string(&message.payload).expect("a payload serializes");
                stamp = stamp.col_expr(outbox::Column::Body, Expr::val(stored));
            }
        }
        stamp.exec(&txn).await?;
        txn.commit().await?;
        Ok(Prepared::Ready(Box::new(Ready {
            message,
            stamped: now,
            first,
        })))
    }

    /// Step 2: the send itself, made once, with WeCom's duplicate check over the whole retry
    /// horizon — and only if it can go out within [`SEND_WITHIN`] of its checks (the lease and the
    /// member's windows are only as good as they are recent).
    pub async fn attempt(&self, ready: Box<Ready>) -> Attempted {
        let Ready {
            message,
            stamped,
            first,
        } = *ready;
        let deadline = stamped + SEND_WITHIN.as_millis() as i64;
        let clock = self.inner.clock.clone();
        let on_time = move || clock.now_ms() <= deadline;
        let result = self
            .inner
            .client
            .send_to_user_once(
                &message.row.recipient,
                message.payload.body.clone(),
                Some(self.duplicate_window()),
                &on_time,
            )
            .await;
        Attempted {
            message,
            result,
            stamped,
            first,
        }
    }

    /// Step 3, one transaction: the outcome, and what the message carries. False when the lease
    /// was lost meanwhile (the new holder sends it again; WeCom recognises a delivered one).
    pub async fn settle(&self, attempted: Attempted) -> Result<bool, DbErr> {
        let Attempted {
            message,
            result,
            stamped,
            first,
        } = attempted;
        let now = self.inner.clock.now_ms();
        let not_sent = matches!(result, Err(WecomError::Late { .. }));
        let outcome = self.outcome_of(&message.row, result);
        let txn = begin_write(&self.inner.db).await?;
        if !self.record(&txn, &message, &outcome, now).await? {
            txn.rollback().await?;
            tracing::warn!(
                id = message.row.id,
                "the lease ran out while sending; the new holder settles it"
            );
            return Ok(false);
        }
        if not_sent && first {
            // Nothing went out: the message is as new as before this attempt.
            outbox::Entity::update_many()
                .col_expr(outbox::Column::FirstAttemptAt, Expr::val(Option::<i64>::None))
                .filter(outbox::Column::Id.eq(message.row.id))
                .filter(outbox::Column::FirstAttemptAt.eq(stamped))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        self.after_commit(&message, &outcome, now).await;
        Ok(true)
    }

    async fn settle_without_send(&self, message: Message, outcome: Outcome, now: i64) -> Result<Prepared, DbErr> {
        let txn = begin_write(&self.inner.db).await?;
        if !self.record(&txn, &message, &outcome, now).await? {
            txn.rollback().await?;
            return Ok(Prepared::LeaseLost);
        }
        txn.commit().await?;
        self.after_commit(&message, &outcome, now).await;
        Ok(Prepared::Settled(outcome))
    }

    fn outcome_of(&self, row: &outbox::Model, result: Result<String, WecomError>) -> Outcome {
        let config = &self.inner.config;
        match result {
            Ok(msgid) => Outcome::Sent { msgid },
            // Our own budget of API calls: WeCom was not asked, so it is no failed attempt.
            Err(WecomError::RateLimited { retry_after, .. }) => Outcome::Retry {
                after: retry_after,
                error: None,
            },
            // Too slow to go out after its checks: not sent; checked again at once.
            Err(WecomError::Late { .. }) => Outcome::Retry {
                after: Duration::ZERO,
                error: None,
            },
            // A card's task id is used once: refused on a resend, the earlier attempt arrived.
            Err(WecomError::Api {
                code: codes::TASK_ID_EXISTS,
                ..
            }) if row.first_attempt_at.is_some() => Outcome::Sent { msgid: String::new() },
            Err(e @ WecomError::InvalidRecipient { .. }) => Outcome::Failed {
                reason: e.to_string(),
                recipient_refused: true,
            },
            Err(e) if row.attempts < config.max_attempts => Outcome::Retry {
                after: retries(config).spread(Ord::max(row.attempts, 1) as u32),
                error: Some(e.to_string()),
            },
            Err(e) => Outcome::Failed {
                reason: e.to_string(),
                recipient_refused: false,
            },
        }
    }

    /// Renews the lease of a message this sender holds; false when it no longer does.
    async fn renew(&self, txn: &DatabaseTransaction, id: i64, now: i64) -> Result<bool, DbErr> {
        let renewed = outbox::Entity::update_many()
            .col_expr(outbox::Column::LockedUntil, Expr::val(now + self.lease_ms()))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq(MessageState::Sending))
            .filter(outbox::Column::LockedBy.eq(self.inner.instance.as_str()))
            .filter(outbox::Column::LockedUntil.gte(now))
            .exec(txn)
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    /// Moves the message from `sending` to the outcome's state — only while this sender holds it —
    /// and settles what it carries in the same transaction. False when the lease was lost.
    async fn record(
        &self,
        txn: &DatabaseTransaction,
        message: &Message,
        outcome: &Outcome,
        now: i64,
    ) -> Result<bool, DbErr> {
        use outbox::Column as C;
        let row = &message.row;
        let mut update = outbox::Entity::update_many()
            .col_expr(C::Status, Expr::val(outcome.state()))
            .col_expr(C::LockedBy, Expr::val(Option::<String>::None))
            .col_expr(C::LockedUntil, Expr::val(Option::<i64>::None));
        update = match outcome {
            Outcome::Sent { msgid } => update
                .col_expr(C::Msgid, Expr::val(msgid.as_str()))
                .col_expr(C::SentAt, Expr::val(now))
                .col_expr(C::LastError, Expr::val(Option::<String>::None)),
            Outcome::Retry { after, error } => {
                let update = update.col_expr(C::NextAttemptAt, Expr::val(now.saturating_add(millis(*after))));
                match error {
                    Some(error) => update.col_expr(C::LastError, Expr::val(error.as_str())),
                    // Waiting for room is not a failed attempt.
                    None => update.col_expr(C::Attempts, Expr::col(C::Attempts).sub(1)),
                }
            }
            Outcome::Failed { reason, .. } | Outcome::Dropped { reason } => {
                update.col_expr(C::LastError, Expr::val(reason.as_str()))
            }
        };
        let moved = update
            .filter(C::Id.eq(row.id))
            .filter(C::Status.eq(MessageState::Sending))
            .filter(C::LockedBy.eq(self.inner.instance.as_str()))
            .exec(txn)
            .await?;
        if moved.rows_affected != 1 {
            return Ok(false);
        }
        self.inner.hooks.settle(txn, message, outcome, now).await?;
        Ok(true)
    }

    async fn after_commit(&self, message: &Message, outcome: &Outcome, now: i64) {
        let (id, recipient) = (message.row.id, message.row.recipient.as_str());
        match outcome {
            Outcome::Sent { .. } => {
                self.inner.metrics.notifications_sent.inc_by(1);
                tracing::info!(id, recipient, "notification sent");
            }
            Outcome::Retry {
                error: Some(error),
                after,
            } => {
                tracing::warn!(id, attempt = message.row.attempts, retry_in_ms = millis(*after), %error, "notification not sent; will retry");
            }
            Outcome::Retry { error: None, after } => {
                tracing::debug!(
                    id,
                    recipient,
                    retry_in_ms = millis(*after),
                    "notification waits for room"
                );
            }
            Outcome::Failed { reason, .. } => {
                self.inner.metrics.notifications_failed.inc_by(1);
                tracing::error!(id, recipient, error = %reason, "notification failed");
            }
            Outcome::Dropped { reason } => tracing::info!(id, recipient, why = %reason, "notification dropped"),
        }
        self.inner.hooks.committed(message, outcome, now).await;
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.inner.config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// How long WeCom must recognise a resend as the same message: every retry a message can get —
    /// the longest backoff before each attempt, and a lease running out after each (its sender died
    /// mid-send) — capped at WeCom's 4 hours. A resend that would fall outside it is not made.
    pub fn duplicate_window(&self) -> Duration {
        duplicate_window(&self.inner.config)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn duplicate_window(config: &OutboxConfig) -> Duration {
    let lease = Duration::from_secs(config.lease_secs);
    let horizon = (1..=Ord::max(config.max_attempts, 1) as u32).fold(Duration::ZERO, |sum, attempt| {
        sum + lease + retries(config).ceiling(attempt).mul_f64(1.2)
    });
    horizon.clamp(Duration::from_secs(120), MAX_DUPLICATE_WINDOW)
}

/// The outbox's retries: `retry_base_ms` doubling, at most 10 minutes apart, spread ±20 %.
fn retries(config: &OutboxConfig) -> Backoff {
    Backoff::new(Duration::from_millis(config.retry_base_ms), Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duplicate_window_covers_every_retry_within_wecoms_maximum() {
        let config = OutboxConfig::default();
        let window = duplicate_window(&config);
        let mut latest = Duration::ZERO;
        for attempt in 1..=config.max_attempts {
            latest += Duration::from_secs(config.lease_secs) + retries(&config).spread(attempt as u32);
        }
        assert!(window >= latest, "{window:?} < {latest:?}");
        assert!(window <= MAX_DUPLICATE_WINDOW);
        let patient = OutboxConfig {
            max_attempts: 40,
            ..OutboxConfig::default()
        };
        assert_eq!(duplicate_window(&patient), MAX_DUPLICATE_WINDOW, "capped at 4 hours");
    }
}

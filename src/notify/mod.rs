//! The notification outbox. A message the service owes a member (a new customer, a lost one, a
//! handover) is queued with [`enqueue`] in the same transaction as the change that calls for it —
//! so it is neither lost when the process dies after the commit nor sent for a change that rolled
//! back — under a dedupe key that makes replays harmless. The [`Notifier`] in every instance claims
//! due messages with a lease and sends them through WeCom with duplicate checking on, so a crash
//! between sending and recording cannot deliver twice either.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use serde::{Deserialize, Serialize};

use crate::bot::session::{List, Sessions};
use crate::config::OutboxConfig;
use crate::db::claim::{self, ClaimColumns, Lease};
use crate::db::entity::outbox;
use crate::db::now_ms;
use crate::jobs::reminder_push;
use crate::metrics::Metrics;
use crate::wecom::api::{MessageBody, WecomClient, WecomError};

const CLAIM: ClaimColumns<outbox::Column> = ClaimColumns {
    id: outbox::Column::Id,
    status: outbox::Column::Status,
    next_attempt_at: outbox::Column::NextAttemptAt,
    locked_by: outbox::Column::LockedBy,
    locked_until: outbox::Column::LockedUntil,
    attempts: outbox::Column::Attempts,
    ready: "pending",
    claimed: "sending",
    order: &[],
};

/// A queued message: what to send, and the reminders it pushes (checked just before sending, and
/// numbered in the recipient's chat session afterwards so that `完成 1` refers to them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub body: MessageBody,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<ReminderRef>,
    /// Reminders listed (not pushed) by the message, numbered in the recipient's session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbered: Vec<i64>,
}

/// A reminder as it was when the message was written: a changed due time means a stale message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderRef {
    pub id: i64,
    pub due_at: i64,
}

impl Payload {
    fn parse(stored: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Payload>(stored).or_else(|_| {
            serde_json::from_str::<MessageBody>(stored).map(|body| Payload {
                body,
                reminders: Vec::new(),
                numbered: Vec::new(),
            })
        })
    }
}

/// Queues `body` for `recipient` unless a message with `key` was queued before. Returns whether it
/// was queued now. Call inside the transaction of the change, then [`Notifier::wake`] after commit.
pub async fn enqueue(db: &impl ConnectionTrait, key: &str, recipient: &str, body: &MessageBody) -> Result<bool, DbErr> {
    enqueue_payload(
        db,
        key,
        recipient,
        &Payload {
            body: body.clone(),
            reminders: Vec::new(),
            numbered: Vec::new(),
        },
    )
    .await
}

pub async fn enqueue_payload(
    db: &impl ConnectionTrait,
    key: &str,
    recipient: &str,
    payload: &Payload,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let inserted = outbox::Entity::insert(outbox::ActiveModel {
        dedupe_key: Set(key.chars().take(160).collect()),
        recipient: Set(recipient.to_owned()),
        body: Set(serde_json::to_string(payload).expect("a payload serializes")),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([outbox::Column::DedupeKey])
    .exec(db)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(_)))
}

/// Sends queued messages. One per instance; they share the queue safely.
#[derive(Clone)]
pub struct Notifier {
    db: DatabaseConnection,
    client: WecomClient,
    config: OutboxConfig,
    wake: Arc<Notify>,
    instance: String,
    metrics: Arc<Metrics>,
    sessions: Sessions,
}

impl Notifier {
    pub fn new(
        db: DatabaseConnection,
        client: WecomClient,
        config: OutboxConfig,
        instance: String,
        metrics: Arc<Metrics>,
        sessions: Sessions,
    ) -> Self {
        Self {
            db,
            client,
            config,
            wake: Arc::new(Notify::new()),
            instance,
            metrics,
            sessions,
        }
    }

    /// Tells the sender that messages were queued (after the transaction committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(1));
        while !shutdown.is_cancelled() {
            if let Err(e) = self.deliver_due(&shutdown).await {
                tracing::warn!(error = %e, "outbox cannot reach the database; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Sends every due message; returns how many were handled (sent, rescheduled or failed).
    pub async fn deliver_due(&self, shutdown: &CancellationToken) -> Result<usize, DbErr> {
        let lease_ms = i64::try_from(self.config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let lease = Lease {
                owner: &self.instance,
                duration_ms: lease_ms,
                batch: 32,
            };
            let claimed = claim::claim::<outbox::Entity>(&self.db, &CLAIM, lease, now_ms()).await?;
            if claimed.is_empty() {
                return Ok(total);
            }
            // A short batch took everything due: no need to ask again (a message queued meanwhile
            // wakes the sender anew).
            let more_due = claimed.len() as u64 == lease.batch;
            // Recipients are served side by side (the API client caps calls in flight); each
            // recipient's messages go out one after another, in the order they were queued.
            let mut by_recipient: BTreeMap<String, Vec<outbox::Model>> = BTreeMap::new();
            for row in claimed {
                by_recipient.entry(row.recipient.clone()).or_default().push(row);
            }
            let mut tasks = JoinSet::new();
            for rows in by_recipient.into_values() {
                let (this, shutdown) = (self.clone(), shutdown.clone());
                tasks.spawn(async move { this.deliver_in_order(rows, &shutdown).await });
            }
            let (mut left, mut failure) = (Vec::new(), None);
            while let Some(joined) = tasks.join_next().await {
                match joined.expect("a delivery task does not panic") {
                    Ok((delivered, undelivered)) => {
                        total += delivered;
                        left.extend(undelivered);
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if !left.is_empty() {
                claim::release::<outbox::Entity>(&self.db, &CLAIM, &self.instance, &left).await?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if shutdown.is_cancelled() || !more_due {
                return Ok(total);
            }
        }
    }

    /// Delivers one recipient's rows in order; returns how many, and the ids left for later
    /// (on shutdown). A database error leaves the rest claimed until their lease runs out.
    async fn deliver_in_order(
        &self,
        rows: Vec<outbox::Model>,
        shutdown: &CancellationToken,
    ) -> Result<(usize, Vec<i64>), DbErr> {
        let mut delivered = 0;
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            self.deliver(row).await?;
            delivered += 1;
            if shutdown.is_cancelled() {
                break;
            }
        }
        Ok((delivered, rows.map(|r| r.id).collect()))
    }

    async fn deliver(&self, row: outbox::Model) -> Result<(), DbErr> {
        let payload = match Payload::parse(&row.body) {
            Ok(payload) => payload,
            Err(e) => {
                return self
                    .finish(&row, Finish::Failed(format!("unreadable message body: {e}"), false))
                    .await;
            }
        };
        if !payload.reminders.is_empty()
            && !reminder_push::still_due(&self.db, &payload.reminders, &row.recipient).await?
        {
            return self
                .finish(&row, Finish::Dropped("its reminders changed before it was sent".into()))
                .await;
        }
        // WeCom drops an identical request within this window: covers a resend after a crash
        // between the send and recording it, without suppressing later messages that happen to read
        // the same.
        let duplicate_window = Duration::from_secs(Ord::max(self.config.lease_secs * 2, 120));
        let finish = match self
            .client
            .send_to_user(&row.recipient, payload.body.clone(), Some(duplicate_window))
            .await
        {
            Ok(msgid) => Finish::Sent(msgid),
            Err(WecomError::RecipientLimited { retry_after, .. }) => Finish::Later(retry_after, None),
            Err(e @ WecomError::InvalidRecipient { .. }) => Finish::Failed(e.to_string(), true),
            Err(e) if row.attempts < self.config.max_attempts => {
                let delay = backoff(Duration::from_millis(self.config.retry_base_ms), row.attempts);
                Finish::Later(delay, Some(e.to_string()))
            }
            Err(e) => Finish::Failed(e.to_string(), false),
        };
        let outcome = finish.clone();
        self.finish(&row, finish).await?;
        if let Finish::Sent(_) = &outcome
            && !payload.numbered.is_empty()
        {
            self.number_in_session(&row.recipient, &payload.numbered).await;
        }
        if payload.reminders.is_empty() {
            return Ok(());
        }
        match outcome {
            Finish::Sent(msgid) => {
                reminder_push::sent(&self.db, &self.metrics, &payload.reminders, &msgid).await?;
                let ids: Vec<i64> = payload.reminders.iter().map(|r| r.id).collect();
                self.number_in_session(&row.recipient, &ids).await;
            }
            Finish::Failed(reason, invalid_recipient) => {
                reminder_push::failed(
                    &self.db,
                    &self.metrics,
                    &payload.reminders,
                    &row.recipient,
                    &reason,
                    invalid_recipient,
                )
                .await?;
            }
            Finish::Later(..) | Finish::Dropped(_) => {}
        }
        Ok(())
    }

    /// The pushed reminders become the member's numbered list: `完成 1` answers the push.
    async fn number_in_session(&self, userid: &str, reminders: &[i64]) {
        let mut loaded = self.sessions.load(userid).await;
        loaded.session.list = Some(List::Reminders(reminders.to_vec()));
        loaded.session.pending = None;
        self.sessions.save(userid, &loaded.session).await;
    }

    async fn finish(&self, row: &outbox::Model, finish: Finish) -> Result<(), DbErr> {
        use outbox::Column as C;
        let now = now_ms();
        let mut update = outbox::Entity::update_many()
            .col_expr(C::LockedBy, Expr::val(Option::<String>::None))
            .col_expr(C::LockedUntil, Expr::val(Option::<i64>::None));
        update = match finish {
            Finish::Sent(msgid) => {
                Metrics::add(&self.metrics.notifications_sent, 1);
                tracing::info!(id = row.id, recipient = %row.recipient, "notification sent");
                update
                    .col_expr(C::Status, Expr::val("sent"))
                    .col_expr(C::Msgid, Expr::val(msgid))
                    .col_expr(C::SentAt, Expr::val(now))
            }
            Finish::Later(delay, error) => {
                let mut update = update.col_expr(C::Status, Expr::val("pending")).col_expr(
                    C::NextAttemptAt,
                    Expr::val(now.saturating_add(delay.as_millis() as i64)),
                );
                match error {
                    Some(error) => {
                        tracing::warn!(id = row.id, attempt = row.attempts, error = %error, "notification not sent; will retry");
                        update = update.col_expr(C::LastError, Expr::val(error));
                    }
                    // Waiting for the member's message window is not a failed attempt.
                    None => {
                        update = update.col_expr(
                            C::Attempts,
                            sea_orm::sea_query::ExprTrait::sub(Expr::col(C::Attempts), 1),
                        )
                    }
                }
                update
            }
            Finish::Failed(error, _) => {
                Metrics::add(&self.metrics.notifications_failed, 1);
                tracing::error!(id = row.id, recipient = %row.recipient, error = %error, "notification failed");
                update
                    .col_expr(C::Status, Expr::val("failed"))
                    .col_expr(C::LastError, Expr::val(error))
            }
            Finish::Dropped(why) => {
                tracing::info!(id = row.id, recipient = %row.recipient, why = %why, "notification dropped");
                update
                    .col_expr(C::Status, Expr::val("dropped"))
                    .col_expr(C::LastError, Expr::val(why))
            }
        };
        update
            .filter(C::Id.eq(row.id))
            .filter(C::LockedBy.eq(self.instance.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

#[derive(Clone)]
enum Finish {
    Sent(String),
    /// Try again after this long; with an error when the attempt failed.
    Later(Duration, Option<String>),
    /// Failed for good; true when WeCom refused the recipient.
    Failed(String, bool),
    /// Not sent, and not to be: what it said no longer holds.
    Dropped(String),
}

fn backoff(base: Duration, attempt: i32) -> Duration {
    let exp = attempt.clamp(1, 16) as u32 - 1;
    let delay = base.saturating_mul(1 << exp).min(Duration::from_secs(600));
    delay.mul_f64(0.8 + rand::random::<f64>() * 0.4)
}

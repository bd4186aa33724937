//! What `/metrics` exposes (the OpenMetrics text format, through the official Prometheus client
//! crate) and `/readyz` checks: counters kept by this process, and gauges read from the database
//! at scrape time (so they agree across instances).

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::entity::inbox::InboxStatus;
use crate::db::entity::outbox::MessageState;
use crate::db::entity::reminder::{DeliveryState, ReminderStatus};
use crate::db::entity::{inbox, outbox, reminder};
use crate::db::now_ms;

/// The metrics of this process: its counters, and gauges filled from the database per scrape.
#[derive(Debug)]
pub struct Metrics {
    started_ms: i64,
    /// When the reminder dispatcher last completed a round or a batch (0: not yet).
    pub dispatcher_last_round_ms: AtomicI64,
    pub callbacks_stored: Counter,
    pub callbacks_duplicate: Counter,
    pub reminders_queued: Counter,
    pub reminders_sent: Counter,
    pub reminders_failed: Counter,
    pub reminders_rerouted: Counter,
    /// Deliveries the sweeper put back on track (they broke the delivery invariant).
    pub deliveries_repaired: Counter,
    /// Seconds between due and pushed, per pushed reminder.
    pub push_delay: Histogram,
    pub notifications_sent: Counter,
    pub notifications_failed: Counter,
    /// Chat answers given in the callback's own response, through the message API, and as an
    /// update of the clicked card: the first share is what a burst should keep high.
    pub answers_in_response: Counter,
    pub answers_by_message: Counter,
    pub answers_by_card_update: Counter,
    /// Inbox lanes this process is handling (running or waiting for a turn).
    pub inbox_lanes_in_flight: Gauge,
    gauges: Gauges,
    registry: Registry,
}

/// Read from the database at scrape time.
#[derive(Debug, Default)]
struct Gauges {
    reminders_due: Gauge,
    oldest_due_age_secs: Gauge,
    dispatcher_idle_secs: Gauge,
    outbox_pending: Gauge,
    outbox_failed: Gauge,
    inbox_pending: Gauge,
    inbox_failed: Gauge,
    inbox_lanes_waiting: Gauge,
    inbox_lane_backlog_max: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let push_delay = Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0]);
        let mut metrics = Self {
            started_ms: now_ms(),
            dispatcher_last_round_ms: AtomicI64::new(0),
            callbacks_stored: Counter::default(),
            callbacks_duplicate: Counter::default(),
            reminders_queued: Counter::default(),
            reminders_sent: Counter::default(),
            reminders_failed: Counter::default(),
            reminders_rerouted: Counter::default(),
            deliveries_repaired: Counter::default(),
            push_delay,
            notifications_sent: Counter::default(),
            notifications_failed: Counter::default(),
            answers_in_response: Counter::default(),
            answers_by_message: Counter::default(),
            answers_by_card_update: Counter::default(),
            inbox_lanes_in_flight: Gauge::default(),
            gauges: Gauges::default(),
            registry: Registry::default(),
        };
        metrics.register();
        metrics
    }
}

impl Metrics {
    /// Every metric under its name (counters get `_total`, the histogram `_sum`, `_count` and
    /// `_bucket`).
    fn register(&mut self) {
        let r = &mut self.registry;
        let g = &self.gauges;
        r.register(
            "scrm_reminders_due",
            "Open reminders whose time has come and that are not pushed yet",
            g.reminders_due.clone(),
        );
        r.register(
            "scrm_reminders_lag_seconds",
            "Age of the oldest due reminder not pushed yet",
            g.oldest_due_age_secs.clone(),
        );
        r.register(
            "scrm_reminders_queued",
            "Reminders queued for pushing by this instance",
            self.reminders_queued.clone(),
        );
        r.register(
            "scrm_reminders_sent",
            "Reminders pushed by this instance",
            self.reminders_sent.clone(),
        );
        r.register(
            "scrm_reminders_failed",
            "Reminders that could not be pushed",
            self.reminders_failed.clone(),
        );
        r.register(
            "scrm_reminders_rerouted",
            "Reminders re-routed to the customer's owner",
            self.reminders_rerouted.clone(),
        );
        r.register(
            "scrm_deliveries_repaired",
            "Reminder deliveries the sweeper put back on track (queued without a live message, or claimed past the lease)",
            self.deliveries_repaired.clone(),
        );
        r.register(
            "scrm_reminder_push_delay_seconds",
            "Delay between a reminder's due time and its push",
            self.push_delay.clone(),
        );
        r.register(
            "scrm_dispatcher_idle_seconds",
            "Seconds since the reminder dispatcher completed a round or a batch",
            g.dispatcher_idle_secs.clone(),
        );
        r.register(
            "scrm_notifications_sent",
            "Messages pushed through the outbox by this instance",
            self.notifications_sent.clone(),
        );
        r.register(
            "scrm_notifications_failed",
            "Messages that failed for good",
            self.notifications_failed.clone(),
        );
        r.register(
            "scrm_outbox_pending",
            "Messages waiting to be pushed",
            g.outbox_pending.clone(),
        );
        r.register(
            "scrm_outbox_failed",
            "Messages that failed for good",
            g.outbox_failed.clone(),
        );
        r.register(
            "scrm_callbacks_stored",
            "Callbacks stored by this instance",
            self.callbacks_stored.clone(),
        );
        r.register(
            "scrm_callbacks_duplicate",
            "WeCom retries recognised as already stored",
            self.callbacks_duplicate.clone(),
        );
        r.register(
            "scrm_inbox_pending",
            "Callbacks waiting to be processed",
            g.inbox_pending.clone(),
        );
        r.register(
            "scrm_inbox_failed",
            "Callbacks that failed for good",
            g.inbox_failed.clone(),
        );
        r.register(
            "scrm_inbox_lanes_waiting",
            "Lanes (a member's chat, a customer's contact events) with callbacks waiting or being processed",
            g.inbox_lanes_waiting.clone(),
        );
        r.register(
            "scrm_inbox_lane_backlog_max",
            "Callbacks waiting or being processed in the longest lane",
            g.inbox_lane_backlog_max.clone(),
        );
        r.register(
            "scrm_inbox_lanes_in_flight",
            "Inbox lanes this instance is processing (running or waiting for a turn)",
            self.inbox_lanes_in_flight.clone(),
        );
        r.register(
            "scrm_answers_in_response",
            "Chat answers given in the callback's own response (passive replies)",
            self.answers_in_response.clone(),
        );
        r.register(
            "scrm_answers_by_message",
            "Chat answers sent through the message API (the response had gone)",
            self.answers_by_message.clone(),
        );
        r.register(
            "scrm_answers_by_card_update",
            "Card clicks answered by updating the card after the response had gone",
            self.answers_by_card_update.clone(),
        );
    }

    /// Counts an answer by how it went out (`passive`, `message`, `update`).
    pub fn answered(&self, mode: &str) {
        match mode {
            "passive" => self.answers_in_response.inc(),
            "message" => self.answers_by_message.inc(),
            _ => self.answers_by_card_update.inc(),
        };
    }

    pub fn dispatcher_round_done(&self) {
        self.dispatcher_last_round_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Seconds since the dispatcher last completed a round (since start when it never did).
    pub fn dispatcher_idle_secs(&self) -> i64 {
        let last = self.dispatcher_last_round_ms.load(Ordering::Relaxed);
        (now_ms() - if last == 0 { self.started_ms } else { last }) / 1000
    }

    /// The exposition: the gauges read from `db` now, then every metric.
    pub async fn render(&self, db: &impl ConnectionTrait) -> Result<String, DbErr> {
        let now = now_ms();
        let g = &self.gauges;
        let due = || {
            reminder::Entity::find()
                .filter(reminder::Column::Status.eq(ReminderStatus::Open))
                .filter(reminder::Column::DueAt.lte(now))
                .filter(reminder::Column::DeliveryState.is_in(DeliveryState::UNSENT))
        };
        let oldest = due().order_by_asc(reminder::Column::DueAt).one(db).await?;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        g.reminders_due.set(count(due().count(db).await?));
        g.oldest_due_age_secs.set(oldest.map_or(0, |r| (now - r.due_at) / 1000));
        g.dispatcher_idle_secs.set(self.dispatcher_idle_secs());
        g.outbox_pending.set(count(
            outbox::Entity::find()
                .filter(outbox::Column::Status.is_in(MessageState::LIVE))
                .count(db)
                .await?,
        ));
        g.outbox_failed.set(count(
            outbox::Entity::find()
                .filter(outbox::Column::Status.eq(MessageState::Failed))
                .count(db)
                .await?,
        ));
        g.inbox_pending.set(count(
            inbox::Entity::find()
                .filter(inbox::Column::Status.is_in(InboxStatus::OPEN))
                .count(db)
                .await?,
        ));
        g.inbox_failed.set(count(
            inbox::Entity::find()
                .filter(inbox::Column::Status.eq(InboxStatus::Failed))
                .count(db)
                .await?,
        ));
        let lanes: Vec<(Option<String>, i64)> = inbox::Entity::find()
            .filter(inbox::Column::Status.is_in(InboxStatus::OPEN))
            .filter(inbox::Column::Lane.is_not_null())
            .select_only()
            .column(inbox::Column::Lane)
            .column_as(Expr::col(inbox::Column::Id).count(), "n")
            .group_by(inbox::Column::Lane)
            .into_tuple()
            .all(db)
            .await?;
        g.inbox_lanes_waiting.set(count(lanes.len() as u64));
        g.inbox_lane_backlog_max
            .set(lanes.iter().map(|(_, n)| *n).max().unwrap_or(0));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        Ok(out)
    }
}

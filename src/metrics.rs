//! What `/metrics` exposes (Prometheus text format) and `/readyz` checks: counters kept by this
//! process, and gauges read from the database at scrape time (so they agree across instances).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use crate::db::entity::inbox::InboxStatus;
use crate::db::entity::outbox::MessageState;
use crate::db::entity::reminder::{DeliveryState, ReminderStatus};
use crate::db::entity::{inbox, outbox, reminder};
use crate::db::now_ms;

/// Counters of this process.
#[derive(Debug)]
pub struct Metrics {
    started_ms: i64,
    /// When the reminder dispatcher last completed a round (0: not yet).
    pub dispatcher_last_round_ms: AtomicI64,
    pub callbacks_stored: AtomicU64,
    pub callbacks_duplicate: AtomicU64,
    pub reminders_queued: AtomicU64,
    pub reminders_sent: AtomicU64,
    pub reminders_failed: AtomicU64,
    pub reminders_rerouted: AtomicU64,
    /// Deliveries the sweeper put back on track (they broke the delivery invariant).
    pub deliveries_repaired: AtomicU64,
    /// Sum and count of (sent − due) for pushed reminders.
    pub reminder_lag_ms_sum: AtomicU64,
    pub reminder_lag_count: AtomicU64,
    pub notifications_sent: AtomicU64,
    pub notifications_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started_ms: now_ms(),
            dispatcher_last_round_ms: AtomicI64::new(0),
            callbacks_stored: AtomicU64::new(0),
            callbacks_duplicate: AtomicU64::new(0),
            reminders_queued: AtomicU64::new(0),
            reminders_sent: AtomicU64::new(0),
            reminders_failed: AtomicU64::new(0),
            reminders_rerouted: AtomicU64::new(0),
            deliveries_repaired: AtomicU64::new(0),
            reminder_lag_ms_sum: AtomicU64::new(0),
            reminder_lag_count: AtomicU64::new(0),
            notifications_sent: AtomicU64::new(0),
            notifications_failed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dispatcher_round_done(&self) {
        self.dispatcher_last_round_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Seconds since the dispatcher last completed a round (since start when it never did).
    pub fn dispatcher_idle_secs(&self) -> i64 {
        let last = self.dispatcher_last_round_ms.load(Ordering::Relaxed);
        (now_ms() - if last == 0 { self.started_ms } else { last }) / 1000
    }
}

struct Gauges {
    reminders_due: u64,
    oldest_due_age_secs: i64,
    outbox_pending: u64,
    outbox_failed: u64,
    inbox_pending: u64,
    inbox_failed: u64,
}

async fn gauges(db: &impl ConnectionTrait, now: i64) -> Result<Gauges, DbErr> {
    let due = || {
        reminder::Entity::find()
            .filter(reminder::Column::Status.eq(ReminderStatus::Open))
            .filter(reminder::Column::DueAt.lte(now))
            .filter(reminder::Column::DeliveryState.is_in(DeliveryState::UNSENT))
    };
    let oldest = due().order_by_asc(reminder::Column::DueAt).one(db).await?;
    Ok(Gauges {
        reminders_due: due().count(db).await?,
        oldest_due_age_secs: oldest.map_or(0, |r| (now - r.due_at) / 1000),
        outbox_pending: outbox::Entity::find()
            .filter(outbox::Column::Status.is_in(MessageState::LIVE))
            .count(db)
            .await?,
        outbox_failed: outbox::Entity::find()
            .filter(outbox::Column::Status.eq(MessageState::Failed))
            .count(db)
            .await?,
        inbox_pending: inbox::Entity::find()
            .filter(inbox::Column::Status.is_in(InboxStatus::OPEN))
            .count(db)
            .await?,
        inbox_failed: inbox::Entity::find()
            .filter(inbox::Column::Status.eq(InboxStatus::Failed))
            .count(db)
            .await?,
    })
}

/// The Prometheus text exposition.
pub async fn render(metrics: &Metrics, db: &impl ConnectionTrait) -> Result<String, DbErr> {
    let g = gauges(db, now_ms()).await?;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric(
        "scrm_reminders_due",
        "gauge",
        "Open reminders whose time has come and that are not pushed yet.",
        g.reminders_due.to_string(),
    );
    metric(
        "scrm_reminders_lag_seconds",
        "gauge",
        "Age of the oldest due reminder not pushed yet.",
        g.oldest_due_age_secs.to_string(),
    );
    metric(
        "scrm_reminders_queued_total",
        "counter",
        "Reminders queued for pushing by this instance.",
        load(&metrics.reminders_queued).to_string(),
    );
    metric(
        "scrm_reminders_sent_total",
        "counter",
        "Reminders pushed by this instance.",
        load(&metrics.reminders_sent).to_string(),
    );
    metric(
        "scrm_reminders_failed_total",
        "counter",
        "Reminders that could not be pushed.",
        load(&metrics.reminders_failed).to_string(),
    );
    metric(
        "scrm_reminders_rerouted_total",
        "counter",
        "Reminders re-routed to the customer's owner.",
        load(&metrics.reminders_rerouted).to_string(),
    );
    metric(
        "scrm_deliveries_repaired_total",
        "counter",
        "Reminder deliveries the sweeper put back on track (queued without a live message, or claimed past the lease).",
        load(&metrics.deliveries_repaired).to_string(),
    );
    let (sum, count) = (load(&metrics.reminder_lag_ms_sum), load(&metrics.reminder_lag_count));
    metric(
        "scrm_reminder_push_delay_seconds_sum",
        "counter",
        "Total delay between due and pushed.",
        format!("{:.3}", sum as f64 / 1000.0),
    );
    metric(
        "scrm_reminder_push_delay_seconds_count",
        "counter",
        "Pushed reminders counted in the delay sum.",
        count.to_string(),
    );
    metric(
        "scrm_dispatcher_idle_seconds",
        "gauge",
        "Seconds since the reminder dispatcher completed a round.",
        metrics.dispatcher_idle_secs().to_string(),
    );
    metric(
        "scrm_notifications_sent_total",
        "counter",
        "Messages pushed through the outbox by this instance.",
        load(&metrics.notifications_sent).to_string(),
    );
    metric(
        "scrm_notifications_failed_total",
        "counter",
        "Messages that failed for good.",
        load(&metrics.notifications_failed).to_string(),
    );
    metric(
        "scrm_outbox_pending",
        "gauge",
        "Messages waiting to be pushed.",
        g.outbox_pending.to_string(),
    );
    metric(
        "scrm_outbox_failed",
        "gauge",
        "Messages that failed for good.",
        g.outbox_failed.to_string(),
    );
    metric(
        "scrm_callbacks_stored_total",
        "counter",
        "Callbacks stored by this instance.",
        load(&metrics.callbacks_stored).to_string(),
    );
    metric(
        "scrm_callbacks_duplicate_total",
        "counter",
        "WeCom retries recognised as already stored.",
        load(&metrics.callbacks_duplicate).to_string(),
    );
    metric(
        "scrm_inbox_pending",
        "gauge",
        "Callbacks waiting to be processed.",
        g.inbox_pending.to_string(),
    );
    metric(
        "scrm_inbox_failed",
        "gauge",
        "Callbacks that failed for good.",
        g.inbox_failed.to_string(),
    );
    Ok(out)
}

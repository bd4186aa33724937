//! Pushing due reminders, exactly once. Every `serve` instance runs a [`Dispatcher`]: each poll it
//! sweeps (see [`sweep`]), then claims due reminders with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, a conditional update on SQLite), writes the push — one per reminder, or one numbered
//! list for several due for the same rep at once, in parts when WeCom's size limit calls for it —
//! and queues it in the outbox in the same transaction that moves the reminders from claimed to
//! queued on that message. The outbox sends it ([`crate::notify`]); its outcome settles the
//! reminders in the same transaction ([`settle`]). The states and their transitions are listed on
//! [`DeliveryState`].

mod render;
pub mod settle;
pub mod sweep;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

pub use self::settle::ReminderDeliveries;
use crate::db::claim::{self, ClaimColumns, Lease};
use crate::db::entity::reminder;
use crate::db::entity::reminder::{DeliveryState, ReminderStatus};
use crate::db::{begin_write, put_state};
use crate::notify;
use crate::services::Services;
use crate::wecom::crypto::sha1_hex;

const CLAIM: ClaimColumns<reminder::Column, DeliveryState> = ClaimColumns {
    id: reminder::Column::Id,
    status: reminder::Column::DeliveryState,
    next_attempt_at: reminder::Column::RetryAt,
    locked_by: reminder::Column::ClaimedBy,
    locked_until: reminder::Column::LeaseUntil,
    attempts: reminder::Column::Attempts,
    ready: DeliveryState::Pending,
    claimed: DeliveryState::Claimed,
    order: &[
        reminder::Column::OwnerUserid,
        reminder::Column::DueAt,
        reminder::Column::Id,
    ],
};

/// How often an instance records that its dispatcher is alive (for `wecom-scrm status`).
const HEARTBEAT_EVERY_MS: i64 = 5_000;

pub struct Dispatcher {
    s: Arc<Services>,
    instance: String,
    last_heartbeat: AtomicI64,
}

impl Dispatcher {
    pub fn new(s: Arc<Services>, instance: String) -> Self {
        Self {
            s,
            instance,
            last_heartbeat: AtomicI64::new(0),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.s.config.jobs.poll_interval_ms.max(1));
        while !shutdown.is_cancelled() {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "reminder dispatcher cannot reach the database; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One poll: the sweeper, then every due reminder queued. Returns how many were queued.
    pub async fn round(&self) -> Result<usize, DbErr> {
        let s = &self.s;
        let repaired = sweep::sweep(&s.db, s.clock.now_ms()).await?;
        s.metrics.deliveries_repaired.inc_by(repaired.total());
        let queued = self.dispatch_due().await?;
        // Leads assigned or recycled are told on the same beat.
        crate::jobs::leads::tell_changes(s).await?;
        // Scores follow each change on the same beat.
        crate::jobs::leads::refresh_scores(s).await?;
        self.beat().await;
        Ok(queued)
    }

    /// Queues every due reminder, batch after batch; the heartbeat moves with each batch, so a long
    /// catch-up reads as progress. Returns how many were queued.
    pub async fn dispatch_due(&self) -> Result<usize, DbErr> {
        let mut total = 0;
        loop {
            let claimed = self.claim_due().await?;
            if claimed.is_empty() {
                return Ok(total);
            }
            total += self.queue_claimed(claimed).await?;
            self.s.notifier.wake();
            self.beat().await;
        }
    }

    /// Claims a batch of due reminders with a lease.
    pub async fn claim_due(&self) -> Result<Vec<reminder::Model>, DbErr> {
        let s = &self.s;
        let now = s.clock.now_ms();
        let lease = Lease {
            owner: &self.instance,
            duration_ms: self.lease_ms(),
            batch: s.config.jobs.claim_batch,
        };
        let due = Condition::all()
            .add(reminder::Column::Status.eq(ReminderStatus::Open))
            .add(reminder::Column::DueAt.lte(now));
        claim::claim_where::<reminder::Entity, DeliveryState>(&s.db, &CLAIM, lease, now, due).await
    }

    /// Writes and queues the pushes of claimed reminders, merged per rep; returns how many
    /// reminders were queued (those whose lease ran out meanwhile are left to their new holder).
    pub async fn queue_claimed(&self, claimed: Vec<reminder::Model>) -> Result<usize, DbErr> {
        // Claimed by owner, so a rep's reminders due together are merged into few messages.
        let mut by_owner: BTreeMap<String, Vec<reminder::Model>> = BTreeMap::new();
        for r in claimed {
            by_owner.entry(r.owner_userid.clone()).or_default().push(r);
        }
        let mut total = 0;
        for (owner, mut reminders) in by_owner {
            reminders.sort_by_key(|r| (r.due_at, r.id));
            for group in reminders.chunks(self.s.config.jobs.merge_max.max(1)) {
                total += self.queue(&owner, group).await?;
            }
        }
        Ok(total)
    }

    /// Moves `group` from claimed to queued on the message(s) that push it — one transaction, and
    /// only while this dispatcher's lease holds and the reminders are still `owner`'s.
    async fn queue(&self, owner: &str, group: &[reminder::Model]) -> Result<usize, DbErr> {
        let s = &self.s;
        let now = s.clock.now_ms();
        let parts = render::render(s, group, now).await?;
        let txn = begin_write(&s.db).await?;
        for part in &parts {
            let generation: Vec<&reminder::Model> = part
                .reminders
                .iter()
                .filter_map(|r| group.iter().find(|m| m.id == r.id))
                .collect();
            let ids = notify::enqueue_payload(&txn, &push_key(owner, &generation), owner, part).await?;
            let [message_id] = ids[..] else {
                // This very push was queued before: its reminders are no longer claimed.
                txn.rollback().await?;
                return Ok(0);
            };
            let moved = reminder::Entity::update_many()
                .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Queued))
                .col_expr(reminder::Column::OutboxId, Expr::val(message_id))
                .col_expr(reminder::Column::UpdatedAt, Expr::val(now))
                .filter(reminder::Column::Id.is_in(generation.iter().map(|r| r.id)))
                .filter(reminder::Column::DeliveryState.eq(DeliveryState::Claimed))
                .filter(reminder::Column::ClaimedBy.eq(self.instance.as_str()))
                .filter(reminder::Column::LeaseUntil.gte(now))
                .filter(reminder::Column::OwnerUserid.eq(owner))
                .exec(&txn)
                .await?
                .rows_affected;
            if moved as usize != generation.len() {
                // The lease ran out (another dispatcher or the sweeper took some), or a hand-over
                // moved them: leave them to whoever has them now.
                txn.rollback().await?;
                return Ok(0);
            }
        }
        txn.commit().await?;
        s.metrics.reminders_queued.inc_by(group.len() as u64);
        Ok(group.len())
    }

    /// Records progress: `/readyz` and `/metrics` at once, `wecom-scrm status` every few seconds.
    async fn beat(&self) {
        let s = &self.s;
        s.metrics.dispatcher_round_done();
        let now = s.clock.now_ms();
        if now - self.last_heartbeat.load(Ordering::Relaxed) < HEARTBEAT_EVERY_MS {
            return;
        }
        self.last_heartbeat.store(now, Ordering::Relaxed);
        if let Err(e) = heartbeat(&s.db, &self.instance, now).await {
            tracing::warn!(error = %e, "dispatcher heartbeat not recorded");
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.s.config.jobs.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// The identity of one push: its recipient, and each reminder with its due time and claim count.
/// A re-route (new recipient), a snooze (new due time) or a later claim of the same reminders (a
/// re-send) is a new push; nothing else can produce the same key.
fn push_key(owner: &str, reminders: &[&reminder::Model]) -> String {
    let identity: String = reminders
        .iter()
        .map(|r| format!("{}@{}#{},", r.id, r.due_at, r.attempts))
        .collect();
    let digest = sha1_hex(format!("{owner}\n{identity}"));
    format!("reminders:{owner}:{digest}")
}

async fn heartbeat(db: &impl ConnectionTrait, instance: &str, now: i64) -> Result<(), DbErr> {
    put_state(db, &format!("dispatcher:{instance}"), &now.to_string(), now).await
}

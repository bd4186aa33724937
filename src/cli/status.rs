//! `wecom-scrm status`: is the deployment healthy? Reads the database (so it sees every instance):
//! the reminder dispatchers' heartbeats, the last agenda and summary, what waits in the queues, and
//! reminder pushes stuck claimed or queued for longer than `jobs.stuck_after_secs`. Exits 1 when no
//! dispatcher completed a round recently, a push is stuck, or the database cannot be reached.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use super::CliError;
use crate::config::Config;
use crate::db::entity::inbox::InboxStatus;
use crate::db::entity::outbox::MessageState;
use crate::db::entity::reminder::{DeliveryState, ReminderStatus};
use crate::db::entity::{inbox, job_run, kv_state, outbox, reminder};
use crate::jobs::reminder_push::sweep;

/// Stuck pushes listed one by one (the rest are counted).
const STUCK_LISTED: u64 = 20;
use crate::db::now_ms;

pub async fn run(config: &Config, db: &DatabaseConnection) -> Result<(), CliError> {
    let failed = |e: sea_orm::DbErr| CliError::Failed(format!("database: {e}"));
    let now = now_ms();
    let stale_ms = i64::try_from(config.jobs.stale_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    println!("database: ok");
    let beats = kv_state::Entity::find()
        .filter(kv_state::Column::Key.starts_with("dispatcher:"))
        .filter(kv_state::Column::UpdatedAt.gte(now - 86_400_000))
        .all(db)
        .await
        .map_err(failed)?;
    let mut alive = 0;
    for beat in &beats {
        let age = (now - beat.updated_at) / 1000;
        // Heartbeats are written every few seconds; allow for that on top of the threshold.
        let ok = now - beat.updated_at <= stale_ms + 5_000;
        alive += usize::from(ok);
        let instance = beat.key.trim_start_matches("dispatcher:");
        println!(
            "dispatcher {instance}: last round {age}s ago ({})",
            if ok { "ok" } else { "STALE" }
        );
    }
    let due = reminder::Entity::find()
        .filter(reminder::Column::Status.eq(ReminderStatus::Open))
        .filter(reminder::Column::DueAt.lte(now))
        .filter(reminder::Column::DeliveryState.is_in(DeliveryState::UNSENT))
        .count(db)
        .await
        .map_err(failed)?;
    let failed_reminders = reminder::Entity::find()
        .filter(reminder::Column::Status.eq(ReminderStatus::Open))
        .filter(reminder::Column::DeliveryState.eq(DeliveryState::Failed))
        .count(db)
        .await
        .map_err(failed)?;
    let outbox_pending = outbox::Entity::find()
        .filter(outbox::Column::Status.is_in(MessageState::LIVE))
        .count(db)
        .await
        .map_err(failed)?;
    let outbox_failed = outbox::Entity::find()
        .filter(outbox::Column::Status.eq(MessageState::Failed))
        .count(db)
        .await
        .map_err(failed)?;
    let inbox_pending = inbox::Entity::find()
        .filter(inbox::Column::Status.is_in(InboxStatus::OPEN))
        .count(db)
        .await
        .map_err(failed)?;
    let inbox_failed = inbox::Entity::find()
        .filter(inbox::Column::Status.eq(InboxStatus::Failed))
        .count(db)
        .await
        .map_err(failed)?;
    for (job, one, many) in [("agenda", "rep", "reps"), ("summary", "recipient", "recipients")] {
        let last = job_run::Entity::find()
            .filter(job_run::Column::Job.eq(job))
            .order_by_desc(job_run::Column::Id)
            .one(db)
            .await
            .map_err(failed)?;
        match last {
            Some(run) => {
                let sent = job_run::Entity::find()
                    .filter(job_run::Column::Job.eq(job))
                    .filter(job_run::Column::Period.eq(run.period.as_str()))
                    .count(db)
                    .await
                    .map_err(failed)?;
                let who = if sent == 1 { one } else { many };
                println!("{job}: last sent for {} to {sent} {who}", run.period);
            }
            None => println!("{job}: not sent yet"),
        }
    }
    println!("reminders due and not pushed yet: {due}; failed: {failed_reminders}");
    println!("outbox: {outbox_pending} waiting, {outbox_failed} failed");
    println!("inbox: {inbox_pending} waiting, {inbox_failed} failed");
    let stuck_ms = i64::try_from(config.jobs.stuck_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let lease_ms = i64::try_from(config.jobs.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let stuck = sweep::stuck(db, now.saturating_sub(stuck_ms), lease_ms, STUCK_LISTED + 1)
        .await
        .map_err(failed)?;
    for d in stuck.iter().take(STUCK_LISTED as usize) {
        let message = d.message_id.map(|id| format!(", message {id}")).unwrap_or_default();
        let why = d.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        println!(
            "STUCK reminder {} for {}: {} for {} min{message}{why}",
            d.reminder_id,
            d.owner,
            d.state.as_str(),
            (now - d.since) / 60_000
        );
    }
    if stuck.len() as u64 > STUCK_LISTED {
        println!("STUCK …and more");
    }
    if alive == 0 {
        return Err(CliError::Failed(if beats.is_empty() {
            "no reminder dispatcher is running (is `wecom-scrm serve` up, with jobs.push_reminders on?)".into()
        } else {
            format!(
                "no reminder dispatcher completed a round in the last {}s",
                config.jobs.stale_after_secs
            )
        }));
    }
    if !stuck.is_empty() {
        return Err(CliError::Failed(format!(
            "reminder pushes claimed or queued for longer than {}s (jobs.stuck_after_secs)",
            config.jobs.stuck_after_secs
        )));
    }
    println!("status: ok");
    Ok(())
}

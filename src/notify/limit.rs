//! WeCom's per-member limits on app messages — 30 a minute and 1,000 an hour, anything above
//! dropped without a word — counted from the outbox's own record of send attempts. The record is
//! durable and shared by every instance, so the limit holds across instances, restarts and cache
//! outages alike; no message is sent on the hope that a window has room.

use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use crate::db::entity::outbox;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// How soon after its checks an attempt must go out, or not at all.
pub const SEND_WITHIN: Duration = Duration::from_secs(5);

/// How many messages one member may be sent per minute and per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberWindows {
    pub per_minute: u32,
    pub per_hour: u32,
}

impl Default for MemberWindows {
    fn default() -> Self {
        Self {
            per_minute: 30,
            per_hour: 1000,
        }
    }
}

/// How long a message to `recipient` must wait for room in the member's windows (none: it may go
/// now). Attempts of other messages to them count — every attempt may have been delivered — but
/// not an earlier attempt of `message_id` itself, which a retry replaces. An attempt is stamped
/// when its checks pass and goes out within [`SEND_WITHIN`] of that (or not at all), so each window
/// is widened by that much: a send is counted wherever in that span it happened.
///
/// Call in the transaction that then stamps the attempt: on PostgreSQL a per-recipient advisory
/// lock, held until that transaction ends, keeps two senders from both taking the last slot;
/// SQLite's single writer does the same by itself.
pub async fn wait_needed(
    txn: &DatabaseTransaction,
    recipient: &str,
    message_id: i64,
    now: i64,
    windows: MemberWindows,
) -> Result<Option<Duration>, DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            // Within the current schema: deployments or tests sharing a database in schemas of
            // their own have members of the same name, and must not wait on each other.
            "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || $1, 0))",
            [format!("scrm:member-window:{recipient}").into()],
        ))
        .await?;
    }
    let mut wait = None;
    let margin = SEND_WITHIN.as_millis() as i64;
    for (window_ms, max) in [
        (MINUTE_MS + margin, windows.per_minute),
        (HOUR_MS + margin, windows.per_hour),
    ] {
        let max = u64::from(max.max(1));
        let attempts = || {
            outbox::Entity::find()
                .filter(outbox::Column::Recipient.eq(recipient))
                .filter(outbox::Column::AttemptedAt.gt(now - window_ms))
                .filter(outbox::Column::Id.ne(message_id))
        };
        if attempts().count(txn).await? < max {
            continue;
        }
        // Full: room comes when the max-th latest attempt leaves the window.
        let leaves: Option<Option<i64>> = attempts()
            .select_only()
            .column(outbox::Column::AttemptedAt)
            .order_by_desc(outbox::Column::AttemptedAt)
            .offset(max - 1)
            .into_tuple()
            .one(txn)
            .await?;
        let at = leaves.flatten().unwrap_or(now) + window_ms;
        let this = Duration::from_millis(u64::try_from(at - now).unwrap_or(0).max(1));
        wait = Some(wait.map_or(this, |w: Duration| w.max(this)));
    }
    Ok(wait)
}

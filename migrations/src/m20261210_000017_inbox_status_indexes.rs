//! On PostgreSQL, the inbox's two indexes over every row by status give way to partial indexes of
//! the few rows that are looked up by status: those being handled (the busy lanes, a worker's
//! leases) and those that failed. A row's status changes twice after it is stored and every change
//! writes a new entry into each index over all rows; under a callback burst that upkeep was a large
//! part of the database's work. The open rows already have partial indexes of their own
//! (`ix_inbox_open`, `ix_inbox_lane_open`).
//!
//! SQLite keeps its indexes: it prepares statements with their values bound later, and uses a
//! partial index only when the statement's own text implies the index's condition.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const BY_STATUS: &str = "ix_inbox_status_next_attempt";
const BY_LANE: &str = "ix_inbox_lane_status";
const CLAIMED: &str = "ix_inbox_claimed";
const FAILED: &str = "ix_inbox_failed";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(
            manager,
            &format!(
                "CREATE INDEX {CLAIMED} ON inbox (locked_by, lane) WHERE status = 'processing'; \
                 CREATE INDEX {FAILED} ON inbox (id) WHERE status = 'failed'; \
                 DROP INDEX {BY_STATUS}; \
                 DROP INDEX {BY_LANE}"
            ),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(
            manager,
            &format!(
                "CREATE INDEX {BY_STATUS} ON inbox (status, next_attempt_at); \
                 CREATE INDEX {BY_LANE} ON inbox (lane, status); \
                 DROP INDEX {CLAIMED}; \
                 DROP INDEX {FAILED}"
            ),
        )
        .await
    }
}

/// Runs `sql` on PostgreSQL; SQLite keeps its indexes.
async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await.map(|_| ())
}

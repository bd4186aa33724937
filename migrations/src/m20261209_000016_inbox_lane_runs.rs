//! The inbox's open rows by lane in arrival order: a claim takes the next rows of each lane it
//! claimed (a member's run of chat commands), and reads them from here without visiting the lane's
//! history or sorting its backlog.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const LANE_OPEN_ROWS: &str = "ix_inbox_lane_open";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX {LANE_OPEN_ROWS} ON inbox (lane, id) WHERE status IN ('pending', 'processing')"
            ))
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX {LANE_OPEN_ROWS}"))
            .await
            .map(|_| ())
    }
}

//! The lane of a stored callback: the rows of one lane (one member's chat, one customer's contact
//! events) are handled one after another in arrival order, different lanes side by side. A claim
//! skips a lane while one of its rows is being handled anywhere, which the index answers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Inbox {
    Table,
    Lane,
    Status,
}

const BY_LANE: &str = "ix_inbox_lane_status";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Inbox::Table)
                    .add_column(ColumnDef::new(Inbox::Lane).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BY_LANE)
                    .table(Inbox::Table)
                    .col(Inbox::Lane)
                    .col(Inbox::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(BY_LANE).table(Inbox::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Inbox::Table).drop_column(Inbox::Lane).to_owned())
            .await
    }
}

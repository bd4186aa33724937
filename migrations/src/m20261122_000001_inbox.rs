//! The durable callback inbox: every verified WeCom callback is stored here before it is acknowledged,
//! exactly once per dedupe key, and processed asynchronously by the inbox worker.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Inbox {
    Table,
    Id,
    DedupeKey,
    Kind,
    FromUser,
    AgentId,
    CreateTime,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedBy,
    LockedUntil,
    LastError,
    Outcome,
    ReceivedAt,
    ProcessedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Inbox::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Inbox::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Inbox::DedupeKey).string_len(96).not_null())
                    .col(ColumnDef::new(Inbox::Kind).string_len(96).not_null())
                    .col(ColumnDef::new(Inbox::FromUser).string_len(128))
                    .col(ColumnDef::new(Inbox::AgentId).big_integer())
                    .col(ColumnDef::new(Inbox::CreateTime).big_integer().not_null())
                    .col(ColumnDef::new(Inbox::Payload).text().not_null())
                    .col(ColumnDef::new(Inbox::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Inbox::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Inbox::NextAttemptAt).big_integer().not_null())
                    .col(ColumnDef::new(Inbox::LockedBy).string_len(64))
                    .col(ColumnDef::new(Inbox::LockedUntil).big_integer())
                    .col(ColumnDef::new(Inbox::LastError).text())
                    .col(ColumnDef::new(Inbox::Outcome).text())
                    .col(ColumnDef::new(Inbox::ReceivedAt).big_integer().not_null())
                    .col(ColumnDef::new(Inbox::ProcessedAt).big_integer())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_inbox_dedupe_key")
                    .table(Inbox::Table)
                    .col(Inbox::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_inbox_status_next_attempt")
                    .table(Inbox::Table)
                    .col(Inbox::Status)
                    .col(Inbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Inbox::Table).to_owned()).await
    }
}

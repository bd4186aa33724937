//! One delivery state machine for reminders and the outbox: a queued reminder points at the one
//! live message that carries it, and a message records when it was first and last attempted — the
//! start of WeCom's duplicate-check window, and the per-member send windows counted from the
//! database.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reminders {
    Table,
    OutboxId,
    DeliveryState,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Recipient,
    AttemptedAt,
    FirstAttemptAt,
}

const REMINDERS_DELIVERY: &str = "ix_reminders_delivery";
const OUTBOX_RECIPIENT_ATTEMPTED: &str = "ix_outbox_recipient_attempted";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Reminders::Table)
                    .add_column(ColumnDef::new(Reminders::OutboxId).big_integer().null())
                    .to_owned(),
            )
            .await?;
        for column in [Outbox::AttemptedAt, Outbox::FirstAttemptAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .add_column(ColumnDef::new(column).big_integer().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(REMINDERS_DELIVERY)
                    .table(Reminders::Table)
                    .col(Reminders::DeliveryState)
                    .col(Reminders::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_RECIPIENT_ATTEMPTED)
                    .table(Outbox::Table)
                    .col(Outbox::Recipient)
                    .col(Outbox::AttemptedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(OUTBOX_RECIPIENT_ATTEMPTED)
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(REMINDERS_DELIVERY)
                    .table(Reminders::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Outbox::FirstAttemptAt, Outbox::AttemptedAt] {
            manager
                .alter_table(Table::alter().table(Outbox::Table).drop_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Reminders::Table)
                    .drop_column(Reminders::OutboxId)
                    .to_owned(),
            )
            .await
    }
}

//! Pushing reminders: when a failed push may be retried (without touching the due time the rep
//! sees), and indexes for the daily figures at a thousand reps and a million follow-ups.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reminders {
    Table,
    RetryAt,
}

#[derive(DeriveIden)]
enum Followers {
    Table,
    AddedAt,
    RemovedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Action,
    At,
}

#[derive(DeriveIden)]
enum Reminders2 {
    #[sea_orm(iden = "reminders")]
    Table,
    DoneAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    LastFollowUpAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Reminders::Table)
                    .add_column(ColumnDef::new(Reminders::RetryAt).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("ix_followers_added_at")
                .table(Followers::Table)
                .col(Followers::AddedAt)
                .to_owned(),
            Index::create()
                .name("ix_followers_removed_at")
                .table(Followers::Table)
                .col(Followers::RemovedAt)
                .to_owned(),
            Index::create()
                .name("ix_audit_action_at")
                .table(AuditLog::Table)
                .col(AuditLog::Action)
                .col(AuditLog::At)
                .to_owned(),
            Index::create()
                .name("ix_reminders_done_at")
                .table(Reminders2::Table)
                .col(Reminders2::DoneAt)
                .to_owned(),
            Index::create()
                .name("ix_customers_last_follow_up")
                .table(Customers::Table)
                .col(Customers::LastFollowUpAt)
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("ix_customers_last_follow_up", Customers::Table.into_iden()),
            ("ix_reminders_done_at", Reminders2::Table.into_iden()),
            ("ix_audit_action_at", AuditLog::Table.into_iden()),
            ("ix_followers_removed_at", Followers::Table.into_iden()),
            ("ix_followers_added_at", Followers::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Reminders::Table)
                    .drop_column(Reminders::RetryAt)
                    .to_owned(),
            )
            .await
    }
}

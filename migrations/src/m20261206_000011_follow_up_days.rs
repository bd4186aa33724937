//! Follow-ups per member and local day, kept on write (a note adds one, an undo takes it back), so
//! that thirty days of a thousand reps' activity is thirty thousand rows to read instead of a
//! million notes to count. Days are the org's local dates (`YYYY-MM-DD`); the service fills the
//! table from the notes when it first starts, and again when the org's time zone changes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FollowUpDays {
    Table,
    Userid,
    Day,
    FollowUps,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FollowUpDays::Table)
                    .col(ColumnDef::new(FollowUpDays::Userid).string().not_null())
                    .col(ColumnDef::new(FollowUpDays::Day).string().not_null())
                    .col(ColumnDef::new(FollowUpDays::FollowUps).big_integer().not_null())
                    .primary_key(Index::create().col(FollowUpDays::Userid).col(FollowUpDays::Day))
                    .to_owned(),
            )
            .await?;
        // The dashboard reads a range of days for everyone (the admin's view).
        manager
            .create_index(
                Index::create()
                    .name("ix_follow_up_days_day")
                    .table(FollowUpDays::Table)
                    .col(FollowUpDays::Day)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FollowUpDays::Table).to_owned())
            .await
    }
}

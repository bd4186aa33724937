//! The managers' daily summary counts a day's follow-ups across the whole org: an index on when
//! they were written keeps that a range scan at a million follow-ups.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum FollowUps {
    Table,
    CreatedAt,
}

const INDEX: &str = "ix_follow_ups_created_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(FollowUps::Table)
                    .col(FollowUps::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(FollowUps::Table).to_owned())
            .await
    }
}

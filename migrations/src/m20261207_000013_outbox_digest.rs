//! What a message looked like to WeCom when it was first sent (a digest of its body): WeCom's
//! duplicate check swallows a second identical message to the same member within its window, so a
//! message whose body matches one sent recently is varied before its first attempt, which the index
//! answers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Recipient,
    SentDigest,
}

const BY_DIGEST: &str = "ix_outbox_recipient_digest";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::SentDigest).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BY_DIGEST)
                    .table(Outbox::Table)
                    .col(Outbox::Recipient)
                    .col(Outbox::SentDigest)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(BY_DIGEST).table(Outbox::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::SentDigest)
                    .to_owned(),
            )
            .await
    }
}

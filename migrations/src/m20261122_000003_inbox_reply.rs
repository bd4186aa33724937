//! The answer to a chat message, kept with the message: so that a replay never runs the command
//! twice, and a WeCom retry of a message answered in the callback response gets the same answer.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Inbox {
    Table,
    Reply,
    ReplyMode,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds only one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Inbox::Table)
                    .add_column(ColumnDef::new(Inbox::Reply).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Inbox::Table)
                    .add_column(ColumnDef::new(Inbox::ReplyMode).string_len(16).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Inbox::Table)
                    .drop_column(Inbox::ReplyMode)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Inbox::Table).drop_column(Inbox::Reply).to_owned())
            .await
    }
}

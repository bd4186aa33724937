//! What was done through the buttons of template cards: one row per card, member and action, so
//! that a second click (or WeCom's retry of one) finds the action taken and changes nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CardActions {
    Table,
    Id,
    TaskId,
    Userid,
    Action,
    Answer,
    CreatedAt,
}

const ONE_ACTION: &str = "ux_card_actions_task_user_action";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CardActions::Table)
                    .col(
                        ColumnDef::new(CardActions::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CardActions::TaskId).string().not_null())
                    .col(ColumnDef::new(CardActions::Userid).string().not_null())
                    .col(ColumnDef::new(CardActions::Action).string().not_null())
                    .col(ColumnDef::new(CardActions::Answer).text().not_null())
                    .col(ColumnDef::new(CardActions::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(ONE_ACTION)
                    .table(CardActions::Table)
                    .col(CardActions::TaskId)
                    .col(CardActions::Userid)
                    .col(CardActions::Action)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CardActions::Table).to_owned())
            .await
    }
}

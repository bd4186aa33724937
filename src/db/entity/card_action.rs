use sea_orm::entity::prelude::*;

/// An action taken through a template card's button: at most one per card, member and action
/// (`task_id`, `userid`, `action`), with the answer the card showed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "card_actions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: String,
    pub userid: String,
    pub action: String,
    #[sea_orm(column_type = "Text")]
    pub answer: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;

/// One stage move of a deal: who (an audit actor string), when, from → to (`from` is `None` when
/// the deal was made).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deal_stages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub deal_id: i64,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub actor: String,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

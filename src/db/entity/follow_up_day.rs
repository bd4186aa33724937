use sea_orm::entity::prelude::*;

/// How many follow-ups (not undone) a member wrote on one local day (`YYYY-MM-DD`, the org's zone).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "follow_up_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub userid: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    pub follow_ups: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;

/// A WeCom department (its WeCom id is the key); `leaders` is a JSON array of userids.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "departments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub name: String,
    pub parent_id: i64,
    #[sea_orm(column_type = "Text")]
    pub leaders: String,
    pub sort_order: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

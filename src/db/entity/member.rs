use sea_orm::entity::prelude::*;

/// A WeCom member (a rep or a manager). `status` is WeCom's (1 active, 2 disabled, 4 not
/// activated, 5 left); `active` is false once they left.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub userid: String,
    pub name: String,
    pub position: String,
    pub main_department: Option<i64>,
    pub status: i32,
    pub active: bool,
    #[sea_orm(column_type = "Text")]
    pub direct_leaders: String,
    pub left_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

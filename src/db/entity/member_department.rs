use sea_orm::entity::prelude::*;

/// Which departments a member belongs to, and which they lead.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_departments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub userid: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub department_id: i64,
    pub is_leader: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

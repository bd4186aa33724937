use sea_orm::entity::prelude::*;

/// A monthly sales target (won amount) for a member or a department.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sales_targets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `member` or `department`.
    pub scope: String,
    /// The member's userid or the department's id.
    pub scope_id: String,
    /// `YYYY-MM`.
    pub month: String,
    pub amount_fen: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

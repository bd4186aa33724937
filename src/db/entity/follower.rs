use sea_orm::entity::prelude::*;

/// A member's WeCom relation to a customer. Closed relations keep their row (`removed_at`,
/// `removed_by`: member, customer, transfer, left, sync) so history is never lost.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "followers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub userid: String,
    pub remark: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub remark_corp_name: String,
    #[sea_orm(column_type = "Text")]
    pub remark_mobiles: String,
    #[sea_orm(column_type = "Text")]
    pub wecom_tags: String,
    pub add_way: i32,
    pub oper_userid: String,
    pub state: String,
    pub added_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub removed_by: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub search_text: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

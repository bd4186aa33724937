use sea_orm::entity::prelude::*;

/// A deal (商机) on a customer. Its stage history is in `deal_stages`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub owner_userid: String,
    pub title: String,
    /// CNY in whole fen; `None` while unknown (a deal made from a customer's stage).
    pub amount_fen: Option<i64>,
    /// `YYYY-MM-DD` in the org's calendar.
    pub expected_close: Option<String>,
    pub stage: String,
    /// Percent, overriding the stage's default.
    pub probability: Option<i16>,
    pub status: DealStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub loss_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A deal's life: open until it is won or lost (moving it to the won or lost stage closes it;
/// moving a closed deal to an open stage opens it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum DealStatus {
    #[sea_orm(string_value = "open")]
    Open,
    #[sea_orm(string_value = "won")]
    Won,
    #[sea_orm(string_value = "lost")]
    Lost,
}

impl DealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }
}

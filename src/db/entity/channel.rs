use sea_orm::entity::prelude::*;

/// A lead channel: the `state` of a 「联系我」 QR code and what people call it (展会二维码), with the
/// welcome message its customers get.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub state: String,
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub welcome_template: Option<String>,
    pub follow_up_plan: Option<String>,
    /// Who owns its new customers: `"round_robin"`, `"least_loaded"` or a JSON list of userids;
    /// `None`: the rep they added.
    #[sea_orm(column_type = "Text", nullable)]
    pub assign: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

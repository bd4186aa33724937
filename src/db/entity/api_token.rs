use sea_orm::entity::prelude::*;

/// An admin API token: `scrm_<public_id>_<secret>`; only the secret's SHA-256 is kept. A revoked
/// token keeps its row (the audit log names it) until a new token takes its name.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    /// `admin` or `manager`.
    pub role: String,
    /// The member a manager token acts for.
    pub member_userid: Option<String>,
    #[sea_orm(unique)]
    pub public_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

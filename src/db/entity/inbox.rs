use sea_orm::entity::prelude::*;

/// One stored WeCom callback. Times are unix milliseconds (portable and index-friendly on both
/// backends); `create_time` is WeCom's own, in seconds.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub kind: String,
    pub from_user: Option<String>,
    pub agent_id: Option<i64>,
    pub create_time: i64,
    /// The decrypted inner XML, exactly as received.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub outcome: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    /// For a chat message: the answer, once the command ran.
    #[sea_orm(column_type = "Text", nullable)]
    pub reply: Option<String>,
    /// How the answer went out: `passive` (in the callback response) or `message` (message API).
    pub reply_mode: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

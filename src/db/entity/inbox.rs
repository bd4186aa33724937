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
    pub status: InboxStatus,
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
    /// Whose turn it is: rows of one lane (`u:<member>` for a member's chat, `c:<customer>` for a
    /// customer's contact events) are handled in arrival order; none for rows without an order.
    pub lane: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum InboxStatus {
    /// Waiting for (another) attempt at `next_attempt_at`.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Claimed by a worker until `locked_until`.
    #[sea_orm(string_value = "processing")]
    Processing,
    /// A handler did its work.
    #[sea_orm(string_value = "processed")]
    Processed,
    /// Nothing to do for it (no handler for the kind, or not for us); the reason is in `outcome`.
    #[sea_orm(string_value = "ignored")]
    Ignored,
    /// Gave up after the configured attempts; the error is in `last_error`.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl InboxStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Processing,
        Self::Processed,
        Self::Ignored,
        Self::Failed,
    ];
    /// Not finished with yet.
    pub const OPEN: [Self; 2] = [Self::Pending, Self::Processing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for InboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

use sea_orm::entity::prelude::*;

/// A message to push to a member through WeCom, recorded in the same transaction as the change
/// that calls for it and delivered exactly once (claimed with a lease, sent with WeCom's duplicate
/// check). Its transitions are listed on [`MessageState`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The message's identity: the recipient, what it is about and, for pushes, the generation of
    /// the attempt (a re-route or a re-send is a new message; a retry is the same one).
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub recipient: String,
    /// The message body as JSON (text, markdown or textcard).
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub status: MessageState,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub msgid: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// When the latest send attempt started: the per-member windows count these.
    pub attempted_at: Option<i64>,
    /// When the first send attempt started: WeCom's duplicate check covers retries from here.
    pub first_attempt_at: Option<i64>,
    /// A digest of the body as WeCom first received it: another message to the same member with
    /// the same digest within the duplicate window would be swallowed, so it is varied first.
    pub sent_digest: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a message stands. Every transition is one transaction, conditional on the state it leaves
/// (and, from sending, on holding the lease); what the message carries (reminders) moves with it.
///
/// | from | to | by |
/// |---|---|---|
/// | — | pending | queued in the transaction of the change that calls for it |
/// | pending | sending | a sender's claim, with a lease |
/// | sending | sending | the lease renewed right before each send; another sender taking over an expired lease |
/// | sending | pending | retry later (WeCom failed, a member's window is full), or given back at shutdown |
/// | sending | sent | WeCom accepted it |
/// | sending | failed | WeCom refused it for good, or attempts ran out |
/// | sending | dropped | what it said no longer holds (checked right before sending) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MessageState {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "sending")]
    Sending,
    #[sea_orm(string_value = "sent")]
    Sent,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "dropped")]
    Dropped,
}

impl MessageState {
    /// Still to be delivered (or being delivered).
    pub const LIVE: [Self; 2] = [Self::Pending, Self::Sending];

    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }

    /// Whether the state machine allows moving from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        use MessageState::*;
        matches!(
            (self, next),
            (Pending, Sending) | (Sending, Sending | Pending | Sent | Failed | Dropped)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

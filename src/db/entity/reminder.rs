use sea_orm::entity::prelude::*;

/// A reminder for `owner_userid`, on a customer or personal. Its life (`status`) and the delivery of
/// its push (`delivery_state`) are two enums; the delivery's transitions are listed on
/// [`DeliveryState`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: Option<i64>,
    pub owner_userid: String,
    pub created_by: String,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub due_at: i64,
    pub status: ReminderStatus,
    pub source: String,
    pub delivery_state: DeliveryState,
    pub claimed_by: Option<String>,
    pub lease_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub msgid: Option<String>,
    /// Claims so far; never reset, so that with the due time it names each push of the reminder.
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub done_at: Option<i64>,
    /// A failed push is not retried before this (unix ms; 0: at once).
    pub retry_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// While queued: the one live outbox message that carries the push. Once sent or failed: the
    /// message that settled it.
    pub outbox_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ReminderStatus {
    #[sea_orm(string_value = "open")]
    Open,
    #[sea_orm(string_value = "done")]
    Done,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

/// Where the push of a reminder stands. Every transition is one transaction, conditional on the
/// state it leaves:
///
/// | from | to | by |
/// |---|---|---|
/// | pending | claimed | the dispatcher's claim, with a lease |
/// | claimed | claimed | another dispatcher taking over an expired lease |
/// | claimed | queued | the dispatcher, inserting the live message in the same transaction |
/// | claimed | pending | giving back; the sweeper, once the lease has run out |
/// | queued | sent / failed | the message's outcome, in the transaction that records it |
/// | queued | pending | the message dropped (stale) or re-routed; the sweeper, when no live message carries it |
/// | any | pending | a snooze re-arms it; a hand-over moves an unsent one to its new owner |
///
/// The invariant: an open reminder that is due is in exactly one of pending, claimed (live lease),
/// queued (exactly one live message), sent or failed (with the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum DeliveryState {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "claimed")]
    Claimed,
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "sent")]
    Sent,
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl DeliveryState {
    /// Due and not pushed yet: what the due gauges count.
    pub const UNSENT: [Self; 3] = [Self::Pending, Self::Claimed, Self::Queued];

    /// Whether the state machine allows moving from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        use DeliveryState::*;
        matches!(
            (self, next),
            (Pending, Claimed)
                | (Claimed, Claimed | Queued | Pending)
                | (Queued, Sent | Failed | Pending)
                | (_, Pending)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl ReminderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

use sea_orm::entity::prelude::*;

/// A reminder for `owner_userid`, on a customer or personal. `status`: open, done, cancelled;
/// `delivery_state`: pending (waits for its time), claimed (being prepared), queued (in the
/// outbox), sent, failed.
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
    pub status: String,
    pub source: String,
    pub delivery_state: String,
    pub claimed_by: Option<String>,
    pub lease_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub msgid: Option<String>,
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub done_at: Option<i64>,
    /// A failed push is not retried before this (unix ms; 0: at once).
    pub retry_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

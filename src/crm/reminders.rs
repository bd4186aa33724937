//! Reminders: on a customer or personal, for one member. Delivery (the push when due) is the
//! scheduler's; here they are created, listed, completed, moved and cancelled.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::audit::{self, Actor};
use crate::db::entity::reminder::{self, DeliveryState, ReminderStatus};

pub const OPEN: ReminderStatus = ReminderStatus::Open;
pub const DONE: ReminderStatus = ReminderStatus::Done;
pub const CANCELLED: ReminderStatus = ReminderStatus::Cancelled;

#[allow(clippy::too_many_arguments)]
pub async fn create(
    db: &impl ConnectionTrait,
    owner: &str,
    actor: &Actor,
    customer_id: Option<i64>,
    text: &str,
    due_at: i64,
    source: &str,
    now: i64,
) -> Result<reminder::Model, DbErr> {
    let created = reminder::ActiveModel {
        customer_id: Set(customer_id),
        owner_userid: Set(owner.to_owned()),
        created_by: Set(actor.name()),
        text: Set(text.to_owned()),
        due_at: Set(due_at),
        status: Set(OPEN),
        source: Set(source.to_owned()),
        delivery_state: Set(DeliveryState::Pending),
        attempts: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let detail = json!({ "reminder_id": created.id, "due_at": due_at, "text": text });
    audit::record(db, actor, "reminder.created", customer_id, Some(owner), detail).await?;
    Ok(created)
}

/// A member's open reminders due before `until`, earliest first (overdue ones come first).
pub async fn open_for(db: &impl ConnectionTrait, owner: &str, until: i64) -> Result<Vec<reminder::Model>, DbErr> {
    reminder::Entity::find()
        .filter(reminder::Column::OwnerUserid.eq(owner))
        .filter(reminder::Column::Status.eq(OPEN))
        .filter(reminder::Column::DueAt.lte(until))
        .order_by_asc(reminder::Column::DueAt)
        .order_by_asc(reminder::Column::Id)
        .all(db)
        .await
}

/// Open reminders on a customer, earliest first.
pub async fn open_on_customer(db: &impl ConnectionTrait, customer_id: i64) -> Result<Vec<reminder::Model>, DbErr> {
    reminder::Entity::find()
        .filter(reminder::Column::CustomerId.eq(customer_id))
        .filter(reminder::Column::Status.eq(OPEN))
        .order_by_asc(reminder::Column::DueAt)
        .all(db)
        .await
}

/// What can change on a reminder, and how the change is recorded for `undo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    Cancel,
    Snooze(i64),
}

/// Applies `change` to an open reminder; returns the reminder as it was before.
pub async fn change(
    db: &impl ConnectionTrait,
    id: i64,
    change: Change,
    actor: &Actor,
    now: i64,
) -> Result<Option<reminder::Model>, DbErr> {
    let Some(before) = reminder::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|r| r.status == OPEN)
    else {
        return Ok(None);
    };
    let mut active = before.clone().into_active_model();
    let action = match change {
        Change::Done => {
            active.status = Set(DONE);
            active.done_at = Set(Some(now));
            "reminder.done"
        }
        Change::Cancel => {
            active.status = Set(CANCELLED);
            "reminder.cancelled"
        }
        Change::Snooze(due_at) => {
            // Re-armed: pushed again when the new time comes. A push already queued for the old
            // time no longer carries it (it is dropped right before sending).
            active.due_at = Set(due_at);
            active.delivery_state = Set(DeliveryState::Pending);
            active.outbox_id = Set(None);
            active.claimed_by = Set(None);
            active.lease_until = Set(None);
            active.sent_at = Set(None);
            active.msgid = Set(None);
            active.retry_at = Set(0);
            active.last_error = Set(None);
            "reminder.snoozed"
        }
    };
    active.updated_at = Set(now);
    active.update(db).await?;
    let detail = json!({ "reminder_id": id, "from_due_at": before.due_at, "from_delivery": before.delivery_state.as_str(), "text": before.text });
    audit::record(
        db,
        actor,
        action,
        before.customer_id,
        Some(&before.owner_userid),
        detail,
    )
    .await?;
    Ok(Some(before))
}

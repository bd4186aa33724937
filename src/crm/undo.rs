//! `undo`: takes back a member's last note, reminder or change, within a short window. What to
//! restore is read from the audit log, which records every change with its previous value.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use super::audit::{self, Actor};
use super::deals::Field;
use super::{followups, reminders};
use crate::db::entity::reminder::DeliveryState;
use crate::db::entity::{audit as audit_log, customer, reminder};

const UNDOABLE: [&str; 12] = [
    "deal.created",
    "deal.stage",
    "followup.created",
    "reminder.created",
    "reminder.done",
    "reminder.cancelled",
    "reminder.snoozed",
    "customer.stage",
    "customer.status",
    "customer.rating",
    "lead.claimed",
    "lead.returned",
];

/// What was taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undone {
    Note {
        preview: String,
    },
    Reminder {
        text: String,
    },
    /// A reminder was done / cancelled / moved, and is as before again.
    ReminderChange {
        action: String,
        text: String,
    },
    Field {
        field: Field,
        restored: Option<String>,
    },
    /// A deal made (by `阶段` on a customer without one) is gone again.
    DealCreated {
        title: String,
    },
    /// A deal is back in the stage it was in.
    DealStage {
        title: String,
        restored: String,
    },
    /// A claim taken back (the lead is in the pool again), or a return (the lead is the member's
    /// again); `done` false when the lead moved on meanwhile and nothing changed.
    Lead {
        claim: bool,
        name: String,
        done: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoResult {
    pub undone: Undone,
    pub customer_id: Option<i64>,
}

/// Undoes `userid`'s most recent undoable action of the last `window_ms`, if any.
pub async fn undo_last(
    db: &impl ConnectionTrait,
    stages: &[String],
    userid: &str,
    window_ms: i64,
    now: i64,
    tz: chrono_tz::Tz,
) -> Result<Option<UndoResult>, DbErr> {
    let actor = Actor::Member(userid.to_owned());
    let recent = audit_log::Entity::find()
        .filter(audit_log::Column::Actor.eq(actor.name()))
        .filter(audit_log::Column::At.gte(now - window_ms))
        .order_by_desc(audit_log::Column::Id)
        .limit(50)
        .all(db)
        .await?;
    let undone_ids: Vec<i64> = recent
        .iter()
        .filter(|e| e.action == "undo")
        .filter_map(|e| serde_json::from_str::<Value>(&e.detail).ok()?.get("undid")?.as_i64())
        .collect();
    let Some(entry) = recent.into_iter().find(|e| {
        (UNDOABLE.contains(&e.action.as_str()) || e.action == "customer.tags") && !undone_ids.contains(&e.id)
    }) else {
        return Ok(None);
    };
    let detail: Value = serde_json::from_str(&entry.detail).unwrap_or(Value::Null);
    let text = |key: &str| detail.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let undone = match entry.action.as_str() {
        "followup.created" => {
            let id = detail.get("follow_up_id").and_then(Value::as_i64).unwrap_or_default();
            followups::remove(db, id, now, tz).await?;
            Undone::Note {
                preview: text("preview"),
            }
        }
        "reminder.created" => {
            let id = detail.get("reminder_id").and_then(Value::as_i64).unwrap_or_default();
            reminder::Entity::update_many()
                .col_expr(reminder::Column::Status, Expr::val(reminders::CANCELLED))
                .col_expr(reminder::Column::UpdatedAt, Expr::val(now))
                .filter(reminder::Column::Id.eq(id))
                .exec(db)
                .await?;
            Undone::Reminder { text: text("text") }
        }
        "reminder.done" | "reminder.cancelled" | "reminder.snoozed" => {
            let id = detail.get("reminder_id").and_then(Value::as_i64).unwrap_or_default();
            let due_at = detail.get("from_due_at").and_then(Value::as_i64).unwrap_or(now);
            let was_sent = detail.get("from_delivery").and_then(Value::as_str) == Some(DeliveryState::Sent.as_str());
            if let Some(current) = reminder::Entity::find_by_id(id).one(db).await? {
                // Pushed already for that time (before the change, or since): not pushed again.
                // Anything else starts over from pending — a push queued meanwhile no longer
                // carries it — so that it goes out once if it is due.
                let pushed = was_sent || (current.delivery_state == DeliveryState::Sent && current.due_at == due_at);
                let mut update = reminder::Entity::update_many()
                    .col_expr(reminder::Column::Status, Expr::val(reminders::OPEN))
                    .col_expr(reminder::Column::DoneAt, Expr::val(Option::<i64>::None))
                    .col_expr(reminder::Column::DueAt, Expr::val(due_at))
                    .col_expr(reminder::Column::UpdatedAt, Expr::val(now));
                if pushed {
                    update = update.col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Sent));
                } else {
                    update = update
                        .col_expr(reminder::Column::DeliveryState, Expr::val(DeliveryState::Pending))
                        .col_expr(reminder::Column::OutboxId, Expr::val(Option::<i64>::None))
                        .col_expr(reminder::Column::ClaimedBy, Expr::val(Option::<String>::None))
                        .col_expr(reminder::Column::LeaseUntil, Expr::val(Option::<i64>::None));
                }
                update.filter(reminder::Column::Id.eq(id)).exec(db).await?;
            }
            Undone::ReminderChange {
                action: entry.action.clone(),
                text: text("text"),
            }
        }
        "deal.created" => {
            let id = detail.get("deal_id").and_then(Value::as_i64).unwrap_or_default();
            let before = detail
                .get("customer_stage_before")
                .and_then(Value::as_str)
                .map(str::to_owned);
            super::pipeline::undo_create(db, stages, id, before, now).await?;
            Undone::DealCreated { title: text("title") }
        }
        "lead.claimed" | "lead.returned" => {
            let claim = entry.action == "lead.claimed";
            let id = entry.customer_id.unwrap_or_default();
            let done = if claim {
                super::pool::undo_claim(db, id, userid, &detail, now).await?
            } else {
                super::pool::undo_return(db, id, userid, &detail, now).await?
            };
            let name = customer::Entity::find_by_id(id)
                .one(db)
                .await?
                .map(|c| super::customers::display(&c))
                .unwrap_or_default();
            Undone::Lead { claim, name, done }
        }
        "deal.stage" => {
            let id = detail.get("deal_id").and_then(Value::as_i64).unwrap_or_default();
            let from = text("from");
            let deal = super::pipeline::undo_move(db, stages, id, &from, &actor, now).await?;
            Undone::DealStage {
                title: deal.map(|d| d.title).unwrap_or_default(),
                restored: from,
            }
        }
        action => {
            let field = match action {
                "customer.stage" => Field::Stage,
                "customer.status" => Field::Status,
                "customer.rating" => Field::Rating,
                _ => Field::Tags,
            };
            let restored = detail.get("from").and_then(Value::as_str).map(str::to_owned);
            let column = match field {
                Field::Stage => customer::Column::Stage,
                Field::Status => customer::Column::LeadStatus,
                Field::Rating => customer::Column::Rating,
                Field::Tags => customer::Column::Tags,
            };
            let value = if field == Field::Tags {
                Some(restored.clone().unwrap_or_else(|| "[]".into()))
            } else {
                restored.clone()
            };
            customer::Entity::update_many()
                .col_expr(column, Expr::val(value))
                .col_expr(customer::Column::UpdatedAt, Expr::val(now))
                .filter(customer::Column::Id.eq(entry.customer_id.unwrap_or_default()))
                .exec(db)
                .await?;
            if field == Field::Status
                && let Some(customer_id) = entry.customer_id
            {
                // The plan the status change scheduled goes with it (a status change replaces
                // every open plan reminder, so the open ones are that plan's).
                super::plans::cancel_open(db, customer_id, now).await?;
            }
            Undone::Field { field, restored }
        }
    };
    audit::record(
        db,
        &actor,
        "undo",
        entry.customer_id,
        Some(userid),
        json!({ "undid": entry.id, "action": entry.action }),
    )
    .await?;
    Ok(Some(UndoResult {
        undone,
        customer_id: entry.customer_id,
    }))
}

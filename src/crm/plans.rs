//! Follow-up plans (the sales playbook): when a customer enters a lead status, the plan for that
//! status schedules reminders for the owner; entering another status replaces the open ones.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::audit::Actor;
use super::reminders;
use crate::config::Plan;
use crate::db::entity::{customer, reminder};

/// Reminders scheduled by a plan carry this source.
pub const SOURCE: &str = "plan";

/// Cancels the customer's open plan reminders and schedules the plan of `status`, if there is one
/// and the customer has an owner. Returns how many reminders were scheduled.
pub async fn apply(
    db: &impl ConnectionTrait,
    plans: &[Plan],
    customer: &customer::Model,
    status: &str,
    now: i64,
) -> Result<usize, DbErr> {
    cancel_open(db, customer.id, now).await?;
    let (Some(plan), Some(owner)) = (
        plans.iter().find(|p| p.status == status),
        customer.owner_userid.as_deref(),
    ) else {
        return Ok(0);
    };
    for step in &plan.steps {
        let due = now + i64::from(step.after_hours) * 3_600_000;
        // Written by the plan, not the member: `undo` takes back the status change, and the plan
        // with it, rather than one of its reminders.
        reminders::create(
            db,
            owner,
            &Actor::System,
            Some(customer.id),
            &step.text,
            due,
            SOURCE,
            now,
        )
        .await?;
    }
    Ok(plan.steps.len())
}

/// Cancels the customer's open plan reminders.
pub async fn cancel_open(db: &impl ConnectionTrait, customer_id: i64, now: i64) -> Result<u64, DbErr> {
    let update = reminder::Entity::update_many()
        .col_expr(reminder::Column::Status, Expr::val(reminders::CANCELLED))
        .col_expr(reminder::Column::UpdatedAt, Expr::val(now))
        .filter(reminder::Column::CustomerId.eq(customer_id))
        .filter(reminder::Column::Source.eq(SOURCE))
        .filter(reminder::Column::Status.eq(reminders::OPEN));
    Ok(update.exec(db).await?.rows_affected)
}

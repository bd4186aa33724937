//! Operator access to the inbox: list rows, and re-queue failed ones once the cause is fixed.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Status;
use crate::db::entity::inbox;
use crate::db::now_ms;

/// The newest rows first, optionally only those with `status`.
pub async fn list(db: &DatabaseConnection, status: Option<Status>, limit: u64) -> Result<Vec<inbox::Model>, DbErr> {
    let mut query = inbox::Entity::find().order_by_desc(inbox::Column::Id).limit(limit);
    if let Some(status) = status {
        query = query.filter(inbox::Column::Status.eq(status.as_str()));
    }
    query.all(db).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryTarget {
    /// One row, whatever its status (except one being processed right now).
    Id(i64),
    /// Every failed row.
    AllFailed,
}

/// Puts rows back in the queue with a fresh attempt count; returns how many were re-queued.
pub async fn retry(db: &DatabaseConnection, target: RetryTarget) -> Result<u64, DbErr> {
    use inbox::Column as C;
    let mut update = inbox::Entity::update_many()
        .col_expr(C::Status, Expr::val(Status::Pending.as_str()))
        .col_expr(C::Attempts, Expr::val(0))
        .col_expr(C::NextAttemptAt, Expr::val(now_ms()))
        .col_expr(C::LockedBy, Expr::val(Option::<String>::None))
        .col_expr(C::LockedUntil, Expr::val(Option::<i64>::None))
        .col_expr(C::ProcessedAt, Expr::val(Option::<i64>::None));
    update = match target {
        RetryTarget::Id(id) => update
            .filter(C::Id.eq(id))
            .filter(C::Status.ne(Status::Processing.as_str())),
        RetryTarget::AllFailed => update.filter(C::Status.eq(Status::Failed.as_str())),
    };
    Ok(update.exec(db).await?.rows_affected)
}

//! A claimed row's writes that hold only while its lease is still the writer's: if the lease ran
//! out and another worker took the row, that worker's outcome is the one that counts.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, UpdateMany};

use super::Status;
use crate::db::entity::inbox;
use crate::db::now_ms;

/// Marks a claimed row processed with the statement `update` (which may set more columns), within
/// the handler's transaction `db`: the work and its outcome then commit together, one commit instead
/// of two. False when the row's lease ran out and another worker took it; the caller must then roll
/// back and let that worker do the work. The handler returns [`Outcome::Committed`] after committing.
pub async fn finish_within(
    db: &impl ConnectionTrait,
    row: &inbox::Model,
    update: UpdateMany<inbox::Entity>,
    note: &str,
) -> Result<bool, DbErr> {
    Ok(finish_all_within(db, &[row], update, note).await? == 1)
}

/// Applies `update` to claimed rows within the handler's transaction `db` while their lease is still
/// this worker's, keeping the lease (the rows are finished later), in one statement: returns how
/// many were still leased to this worker.
pub async fn keep_all_within(
    db: &impl ConnectionTrait,
    rows: &[&inbox::Model],
    update: UpdateMany<inbox::Entity>,
) -> Result<u64, DbErr> {
    let Some((owner, picked)) = claimed_together(rows) else {
        return Ok(0);
    };
    Ok(leased_to(update, picked, owner).exec(db).await?.rows_affected)
}

/// [`finish_within`] for several claimed rows at once (one statement): returns how many were still
/// leased to this worker and are now marked processed.
pub async fn finish_all_within(
    db: &impl ConnectionTrait,
    rows: &[&inbox::Model],
    update: UpdateMany<inbox::Entity>,
    note: &str,
) -> Result<u64, DbErr> {
    let Some((owner, picked)) = claimed_together(rows) else {
        return Ok(0);
    };
    let update = finished(update, Status::Processed, note.to_owned(), now_ms());
    Ok(while_leased(update, picked, owner).exec(db).await?.rows_affected)
}

/// The owner of rows claimed together (the first row's lease holder; none when it has no lease)
/// and the condition picking them.
fn claimed_together<'a>(rows: &[&'a inbox::Model]) -> Option<(&'a str, sea_orm::sea_query::SimpleExpr)> {
    let owner = rows.first()?.locked_by.as_deref()?;
    Some((owner, inbox::Column::Id.is_in(rows.iter().map(|row| row.id))))
}

pub(super) fn finished(
    update: UpdateMany<inbox::Entity>,
    status: Status,
    text: String,
    now: i64,
) -> UpdateMany<inbox::Entity> {
    use inbox::Column as C;
    let (outcome, error) = if status == Status::Failed {
        (None, Some(text))
    } else {
        (Some(text), None)
    };
    update
        .col_expr(C::Status, Expr::val(status.as_str()))
        .col_expr(C::Outcome, Expr::val(outcome))
        .col_expr(C::LastError, Expr::val(error))
        .col_expr(C::ProcessedAt, Expr::val(now))
}

/// Applies `update` (and gives up the lease) to the rows `rows` picks only while their lease is still
/// `owner`'s: if it ran out and another worker took a row, that worker's outcome is the one that counts.
pub(super) fn while_leased(
    update: UpdateMany<inbox::Entity>,
    rows: sea_orm::sea_query::SimpleExpr,
    owner: &str,
) -> UpdateMany<inbox::Entity> {
    use inbox::Column as C;
    let update = update
        .col_expr(C::LockedBy, Expr::val(Option::<String>::None))
        .col_expr(C::LockedUntil, Expr::val(Option::<i64>::None));
    leased_to(update, rows, owner)
}

/// Limits `update` to the rows `rows` picks that are still claimed under `owner`'s lease.
fn leased_to(
    update: UpdateMany<inbox::Entity>,
    rows: sea_orm::sea_query::SimpleExpr,
    owner: &str,
) -> UpdateMany<inbox::Entity> {
    use inbox::Column as C;
    update
        .filter(rows)
        .filter(C::LockedBy.eq(owner))
        .filter(C::Status.eq(Status::Processing.as_str()))
}

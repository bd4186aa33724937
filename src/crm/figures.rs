//! Activity figures per member over a period: what `日报` shows a rep, and what the managers'
//! summary adds up. One grouped query per figure, whatever the number of members.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use serde_json::Value;

use crate::db::entity::{audit, follow_up, follower, reminder};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Relations that began in the period.
    pub new_customers: u64,
    pub follow_ups: u64,
    pub reminders_done: u64,
    /// Open reminders already due (at `now`, whatever the period).
    pub overdue: u64,
    pub stage_moves: u64,
    /// Moves into the won stage.
    pub wins: u64,
    /// Customers who deleted the member (客户删人) in the period.
    pub lost: u64,
}

async fn counts<E: EntityTrait>(
    db: &impl ConnectionTrait,
    group: E::Column,
    query: sea_orm::Select<E>,
) -> Result<HashMap<String, u64>, DbErr>
where
    E::Column: ColumnTrait,
{
    let rows: Vec<(String, i64)> = query
        .select_only()
        .column(group)
        .column_as(Expr::col(group).count(), "n")
        .group_by(group)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// Figures for each of `members` over `[start, end)`.
pub async fn for_members(
    db: &impl ConnectionTrait,
    members: &[String],
    start: i64,
    end: i64,
    now: i64,
    won_stage: &str,
) -> Result<HashMap<String, Figures>, DbErr> {
    let mut out: HashMap<String, Figures> = members.iter().map(|m| (m.clone(), Figures::default())).collect();
    if members.is_empty() {
        return Ok(out);
    }
    let ids = || members.iter().cloned();
    let new = counts(
        db,
        follower::Column::Userid,
        follower::Entity::find()
            .filter(follower::Column::Userid.is_in(ids()))
            .filter(follower::Column::AddedAt.gte(start))
            .filter(follower::Column::AddedAt.lt(end)),
    )
    .await?;
    let notes = counts(
        db,
        follow_up::Column::AuthorUserid,
        follow_up::Entity::find()
            .filter(follow_up::Column::AuthorUserid.is_in(ids()))
            .filter(follow_up::Column::CreatedAt.gte(start))
            .filter(follow_up::Column::CreatedAt.lt(end))
            .filter(follow_up::Column::DeletedAt.is_null()),
    )
    .await?;
    let done = counts(
        db,
        reminder::Column::OwnerUserid,
        reminder::Entity::find()
            .filter(reminder::Column::OwnerUserid.is_in(ids()))
            .filter(reminder::Column::Status.eq("done"))
            .filter(reminder::Column::DoneAt.gte(start))
            .filter(reminder::Column::DoneAt.lt(end)),
    )
    .await?;
    let overdue = counts(
        db,
        reminder::Column::OwnerUserid,
        reminder::Entity::find()
            .filter(reminder::Column::OwnerUserid.is_in(ids()))
            .filter(reminder::Column::Status.eq("open"))
            .filter(reminder::Column::DueAt.lt(now)),
    )
    .await?;
    let lost = counts(
        db,
        follower::Column::Userid,
        follower::Entity::find()
            .filter(follower::Column::Userid.is_in(ids()))
            .filter(follower::Column::RemovedBy.eq("customer"))
            .filter(follower::Column::RemovedAt.gte(start))
            .filter(follower::Column::RemovedAt.lt(end)),
    )
    .await?;
    // Stage moves are few per day: read them and tell wins apart here.
    let moves: Vec<(Option<String>, String)> = audit::Entity::find()
        .filter(audit::Column::Action.eq("customer.stage"))
        .filter(audit::Column::MemberUserid.is_in(ids()))
        .filter(audit::Column::At.gte(start))
        .filter(audit::Column::At.lt(end))
        .select_only()
        .column(audit::Column::MemberUserid)
        .column(audit::Column::Detail)
        .into_tuple()
        .all(db)
        .await?;
    for (member, f) in out.iter_mut() {
        f.new_customers = new.get(member).copied().unwrap_or(0);
        f.follow_ups = notes.get(member).copied().unwrap_or(0);
        f.reminders_done = done.get(member).copied().unwrap_or(0);
        f.overdue = overdue.get(member).copied().unwrap_or(0);
        f.lost = lost.get(member).copied().unwrap_or(0);
    }
    for (member, detail) in moves {
        let Some(f) = member.and_then(|m| out.get_mut(&m)) else {
            continue;
        };
        f.stage_moves += 1;
        let to = serde_json::from_str::<Value>(&detail)
            .ok()
            .and_then(|d| d.get("to").and_then(Value::as_str).map(str::to_owned));
        if to.as_deref() == Some(won_stage) {
            f.wins += 1;
        }
    }
    Ok(out)
}

//! Activity figures per member over a period: what `日报` shows a rep, and what the managers'
//! summary adds up. One grouped query per figure, whatever the number of members.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use serde_json::Value;

use crate::db::entity::reminder::ReminderStatus;
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
    if members.is_empty() {
        return Ok(HashMap::new());
    }
    let mut out = compute(db, Some(members), start, end, now, won_stage).await?;
    for m in members {
        out.entry(m.clone()).or_default();
    }
    out.retain(|m, _| members.contains(m));
    Ok(out)
}

/// Figures over `[start, end)` for every member with any: the whole org in one pass.
pub async fn for_everyone(
    db: &impl ConnectionTrait,
    start: i64,
    end: i64,
    now: i64,
    won_stage: &str,
) -> Result<HashMap<String, Figures>, DbErr> {
    compute(db, None, start, end, now, won_stage).await
}

/// Adds a member filter when there is one.
fn among<E: EntityTrait>(query: sea_orm::Select<E>, column: E::Column, members: Option<&[String]>) -> sea_orm::Select<E>
where
    E::Column: ColumnTrait,
{
    match members {
        Some(members) => query.filter(column.is_in(members.iter().cloned())),
        None => query,
    }
}

async fn compute(
    db: &impl ConnectionTrait,
    members: Option<&[String]>,
    start: i64,
    end: i64,
    now: i64,
    won_stage: &str,
) -> Result<HashMap<String, Figures>, DbErr> {
    let new = counts(
        db,
        follower::Column::Userid,
        among(follower::Entity::find(), follower::Column::Userid, members)
            .filter(follower::Column::AddedAt.gte(start))
            .filter(follower::Column::AddedAt.lt(end)),
    )
    .await?;
    let notes = counts(
        db,
        follow_up::Column::AuthorUserid,
        among(follow_up::Entity::find(), follow_up::Column::AuthorUserid, members)
            .filter(follow_up::Column::CreatedAt.gte(start))
            .filter(follow_up::Column::CreatedAt.lt(end))
            .filter(follow_up::Column::DeletedAt.is_null()),
    )
    .await?;
    let done = counts(
        db,
        reminder::Column::OwnerUserid,
        among(reminder::Entity::find(), reminder::Column::OwnerUserid, members)
            .filter(reminder::Column::Status.eq(ReminderStatus::Done))
            .filter(reminder::Column::DoneAt.gte(start))
            .filter(reminder::Column::DoneAt.lt(end)),
    )
    .await?;
    let overdue = counts(
        db,
        reminder::Column::OwnerUserid,
        among(reminder::Entity::find(), reminder::Column::OwnerUserid, members)
            .filter(reminder::Column::Status.eq(ReminderStatus::Open))
            .filter(reminder::Column::DueAt.lt(now)),
    )
    .await?;
    let lost = counts(
        db,
        follower::Column::Userid,
        among(follower::Entity::find(), follower::Column::Userid, members)
            .filter(follower::Column::RemovedBy.eq("customer"))
            .filter(follower::Column::RemovedAt.gte(start))
            .filter(follower::Column::RemovedAt.lt(end)),
    )
    .await?;
    // Stage moves are few per day: read them and tell wins apart here.
    let moves: Vec<(Option<String>, String)> = among(audit::Entity::find(), audit::Column::MemberUserid, members)
        // Deals' moves and new deals (not those made from old stages by the service itself),
        // and the customers' stage changes recorded before deals existed.
        .filter(audit::Column::Action.is_in(["customer.stage", "deal.stage", "deal.created"]))
        .filter(audit::Column::Actor.ne("system"))
        .filter(audit::Column::At.gte(start))
        .filter(audit::Column::At.lt(end))
        .select_only()
        .column(audit::Column::MemberUserid)
        .column(audit::Column::Detail)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<String, Figures> = HashMap::new();
    for (member, n) in new {
        out.entry(member).or_default().new_customers = n;
    }
    for (member, n) in notes {
        out.entry(member).or_default().follow_ups = n;
    }
    for (member, n) in done {
        out.entry(member).or_default().reminders_done = n;
    }
    for (member, n) in overdue {
        out.entry(member).or_default().overdue = n;
    }
    for (member, n) in lost {
        out.entry(member).or_default().lost = n;
    }
    for (member, detail) in moves {
        let Some(member) = member else {
            continue;
        };
        let f = out.entry(member).or_default();
        f.stage_moves += 1;
        let to = serde_json::from_str::<Value>(&detail).ok().and_then(|d| {
            d.get("to")
                .or_else(|| d.get("stage"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if to.as_deref() == Some(won_stage) {
            f.wins += 1;
        }
    }
    Ok(out)
}

impl Figures {
    /// Adds `other` to these figures (team totals, multi-day windows).
    pub fn add(&mut self, other: &Figures) {
        self.new_customers += other.new_customers;
        self.follow_ups += other.follow_ups;
        self.reminders_done += other.reminders_done;
        self.overdue += other.overdue;
        self.stage_moves += other.stage_moves;
        self.wins += other.wins;
        self.lost += other.lost;
    }

    /// Whether nothing happened (overdue reminders aside: they are not activity).
    pub fn is_quiet(&self) -> bool {
        self.new_customers + self.follow_ups + self.reminders_done + self.stage_moves + self.wins + self.lost == 0
    }
}

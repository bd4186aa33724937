//! What a department leader asks about their team in chat: the overdue reminders, who logged no
//! follow-up today and which customers are going cold, one rep's day.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::members;
use super::risk::Risk;
use crate::db::entity::reminder::ReminderStatus;
use crate::db::entity::{customer, follow_up, member, reminder};

/// The members `leader` leads (every department under theirs), without the leader; empty when
/// they lead none.
pub async fn team_of(db: &impl ConnectionTrait, leader: &str) -> Result<Vec<String>, DbErr> {
    let led = members::led_departments(db, leader).await?;
    if led.is_empty() {
        return Ok(Vec::new());
    }
    let mut team = members::members_of(db, &led).await?;
    team.retain(|m| m != leader);
    Ok(team)
}

/// Active members' names, by userid.
pub async fn names(db: &impl ConnectionTrait, userids: &[String]) -> Result<HashMap<String, String>, DbErr> {
    Ok(member::Entity::find()
        .filter(member::Column::Userid.is_in(userids.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| {
            let name = members::name_or_id(m.name, &m.userid);
            (m.userid, name)
        })
        .collect())
}

/// Customers' names, by id.
pub async fn customer_names(db: &impl ConnectionTrait, ids: Vec<i64>) -> Result<HashMap<i64, String>, DbErr> {
    Ok(customer::Entity::find()
        .filter(customer::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

/// Open reminders of `team` already due at `now`, the longest overdue first; at most `limit`.
pub async fn overdue(
    db: &impl ConnectionTrait,
    team: &[String],
    now: i64,
    limit: u64,
) -> Result<Vec<reminder::Model>, DbErr> {
    reminder::Entity::find()
        .filter(reminder::Column::OwnerUserid.is_in(team.iter().cloned()))
        .filter(reminder::Column::Status.eq(ReminderStatus::Open))
        .filter(reminder::Column::DueAt.lt(now))
        .order_by_asc(reminder::Column::DueAt)
        .order_by_asc(reminder::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The active members of `team` who logged no follow-up since `since`.
pub async fn idle(db: &impl ConnectionTrait, team: &[String], since: i64) -> Result<Vec<String>, DbErr> {
    let active: Vec<String> = member::Entity::find()
        .filter(member::Column::Userid.is_in(team.iter().cloned()))
        .filter(member::Column::Active.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.userid)
        .collect();
    let busy: BTreeSet<String> = follow_up::Entity::find()
        .filter(follow_up::Column::AuthorUserid.is_in(active.iter().cloned()))
        .filter(follow_up::Column::CreatedAt.gte(since))
        .filter(follow_up::Column::DeletedAt.is_null())
        .select_only()
        .column(follow_up::Column::AuthorUserid)
        .distinct()
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut idle: Vec<String> = active.into_iter().filter(|m| !busy.contains(m)).collect();
    idle.sort();
    Ok(idle)
}

/// Customers owned by `team` going cold — quiet too long in an open stage, or flagged at risk —
/// the quietest first; at most `limit`.
pub async fn going_cold(
    db: &impl ConnectionTrait,
    team: &[String],
    risk: &Risk,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    use sea_orm::sea_query::{NullOrdering, Order};
    customer::Entity::find()
        .filter(customer::Column::OwnerUserid.is_in(team.iter().cloned()))
        .filter(risk.condition())
        .order_by_with_nulls(customer::Column::LastFollowUpAt, Order::Asc, NullOrdering::First)
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// One member's follow-ups since `since`, newest first; at most `limit`.
pub async fn follow_ups_of(
    db: &impl ConnectionTrait,
    userid: &str,
    since: i64,
    limit: u64,
) -> Result<Vec<follow_up::Model>, DbErr> {
    follow_up::Entity::find()
        .filter(follow_up::Column::AuthorUserid.eq(userid))
        .filter(follow_up::Column::CreatedAt.gte(since))
        .filter(follow_up::Column::DeletedAt.is_null())
        .order_by_desc(follow_up::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
}

//! Follow-ups per member and local day (`follow_up_days`), kept on write: a note adds one to its
//! author's day, an undo takes it back, in the note's own transaction. The dashboard reads thirty
//! days of it instead of counting a month of notes. Days are the org's local dates; the table is
//! filled from the notes when the service first starts in a time zone ([`rebuild_once`]).

use std::collections::HashMap;

use chrono_tz::Tz;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement,
};

use crate::db::entity::job_run::RunStatus;
use crate::db::entity::{follow_up, follow_up_day};
use crate::db::runs;
use crate::texts::date_key;

const JOB: &str = "follow_up_days";
/// The run record's scope; its period is the zone the table's days are in.
const ZONE: &str = "zone";
const PAGE: u64 = 50_000;
const INSERT_BATCH: usize = 1_000;

/// Adds `delta` (1 for a note, -1 for one taken back) to `userid`'s count on the local day of `at`.
pub async fn count_note(db: &impl ConnectionTrait, userid: &str, at: i64, tz: Tz, delta: i64) -> Result<(), DbErr> {
    use follow_up_day::Column as C;
    follow_up_day::Entity::insert(follow_up_day::ActiveModel {
        userid: Set(userid.to_owned()),
        day: Set(date_key(at, tz)),
        follow_ups: Set(Ord::max(delta, 0)),
    })
    .on_conflict(
        OnConflict::columns([C::Userid, C::Day])
            .value(
                C::FollowUps,
                Expr::col((follow_up_day::Entity, C::FollowUps)).add(delta),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Fills the table from the notes unless it already holds this zone's days: on the first start
/// and after the org's zone changed. Exactly one of several starting instances does it. Returns
/// how many day rows were written when it ran.
pub async fn rebuild_once(db: &DatabaseConnection, tz: Tz) -> Result<Option<u64>, DbErr> {
    if runs::exists(db, JOB, ZONE, tz.name()).await? {
        return Ok(None);
    }
    let txn = crate::db::begin_write(db).await?;
    lock(&txn).await?;
    if !runs::try_start(&txn, JOB, ZONE, tz.name()).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    // The record of another zone no longer describes the table.
    crate::db::entity::job_run::Entity::delete_many()
        .filter(crate::db::entity::job_run::Column::Job.eq(JOB))
        .filter(crate::db::entity::job_run::Column::Period.ne(tz.name()))
        .exec(&txn)
        .await?;
    let rows = fill(&txn, tz).await?;
    let detail = format!("{rows} member days in {}", tz.name());
    runs::finish(&txn, JOB, ZONE, tz.name(), RunStatus::Done, &detail).await?;
    txn.commit().await?;
    Ok(Some(rows))
}

/// Keeps notes written meanwhile out of the count until it is done: their `+1` waits for this
/// transaction, and the note itself is not yet visible to it (PostgreSQL; SQLite has one writer).
async fn lock(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "LOCK TABLE follow_up_days IN EXCLUSIVE MODE",
        ))
        .await?;
    }
    Ok(())
}

/// Replaces the table's content with the count of the notes (not undone) per author and local
/// day in `tz`, in one transaction. Returns how many day rows were written.
pub async fn rebuild(db: &DatabaseConnection, tz: Tz) -> Result<u64, DbErr> {
    let txn = crate::db::begin_write(db).await?;
    lock(&txn).await?;
    let rows = fill(&txn, tz).await?;
    txn.commit().await?;
    Ok(rows)
}

/// The rebuild's work, in the caller's locked transaction: reads the notes a page at a time.
async fn fill(db: &impl ConnectionTrait, tz: Tz) -> Result<u64, DbErr> {
    follow_up_day::Entity::delete_many().exec(db).await?;
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String, i64)> = follow_up::Entity::find()
            .filter(follow_up::Column::Id.gt(after))
            .filter(follow_up::Column::DeletedAt.is_null())
            .select_only()
            .column(follow_up::Column::Id)
            .column(follow_up::Column::AuthorUserid)
            .column(follow_up::Column::CreatedAt)
            .order_by_asc(follow_up::Column::Id)
            .limit(PAGE)
            .into_tuple()
            .all(db)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (_, author, at) in page {
            *counts.entry((author, date_key(at, tz))).or_default() += 1;
        }
    }
    let rows = counts.len() as u64;
    let mut models = counts.into_iter().map(|((userid, day), n)| follow_up_day::ActiveModel {
        userid: Set(userid),
        day: Set(day),
        follow_ups: Set(n),
    });
    loop {
        let batch: Vec<_> = models.by_ref().take(INSERT_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        follow_up_day::Entity::insert_many(batch)
            .exec_without_returning(db)
            .await?;
    }
    Ok(rows)
}

/// `(userid, day, follow-ups)` from the local day of `from` on, of `members` or everyone.
pub async fn since(
    db: &impl ConnectionTrait,
    members: Option<&[String]>,
    from: i64,
    tz: Tz,
) -> Result<Vec<(String, chrono::NaiveDate, i64)>, DbErr> {
    let mut query = follow_up_day::Entity::find().filter(follow_up_day::Column::Day.gte(date_key(from, tz)));
    if let Some(members) = members {
        query = query.filter(follow_up_day::Column::Userid.is_in(members.iter().cloned()));
    }
    let rows: Vec<(String, String, i64)> = query
        .select_only()
        .column(follow_up_day::Column::Userid)
        .column(follow_up_day::Column::Day)
        .column(follow_up_day::Column::FollowUps)
        .into_tuple()
        .all(db)
        .await?;
    // Days are written by `date_key` only; one that does not read as a date is not ours to count.
    Ok(rows
        .into_iter()
        .filter_map(|(userid, day, n)| Some((userid, day.parse().ok()?, n)))
        .collect())
}

//! Follow-up notes on customers.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use chrono_tz::Tz;

use super::activity;
use super::audit::{self, Actor};
use crate::db::entity::{customer, follow_up};
use crate::texts::preview;

/// Logs a note on a customer by `author`, counted on the author's day in `tz`.
pub async fn add(
    db: &impl ConnectionTrait,
    customer_id: i64,
    author: &str,
    content: &str,
    now: i64,
    tz: Tz,
) -> Result<follow_up::Model, DbErr> {
    let note = follow_up::ActiveModel {
        customer_id: Set(customer_id),
        author_userid: Set(author.to_owned()),
        content: Set(content.to_owned()),
        kind: Set("note".into()),
        created_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    // After the note: a rebuild of the day counts running meanwhile then never counts it twice.
    activity::count_note(db, author, now, tz, 1).await?;
    customer::Entity::update_many()
        .col_expr(customer::Column::LastFollowUpAt, Expr::val(now))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(customer_id))
        .exec(db)
        .await?;
    let detail = json!({ "follow_up_id": note.id, "preview": preview(content, 40) });
    audit::record(
        db,
        &Actor::Member(author.to_owned()),
        "followup.created",
        Some(customer_id),
        Some(author),
        detail,
    )
    .await?;
    Ok(note)
}

/// The newest notes on a customer (not undone), newest first.
pub async fn recent(db: &impl ConnectionTrait, customer_id: i64, limit: u64) -> Result<Vec<follow_up::Model>, DbErr> {
    follow_up::Entity::find()
        .filter(follow_up::Column::CustomerId.eq(customer_id))
        .filter(follow_up::Column::DeletedAt.is_null())
        .order_by_desc(follow_up::Column::CreatedAt)
        .order_by_desc(follow_up::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Takes a note back (kept, marked deleted; once), and recomputes the customer's last follow-up
/// time and the author's day.
pub async fn remove(db: &impl ConnectionTrait, id: i64, now: i64, tz: Tz) -> Result<Option<follow_up::Model>, DbErr> {
    let Some(note) = follow_up::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    if note.deleted_at.is_some() {
        return Ok(Some(note));
    }
    activity::count_note(db, &note.author_userid, note.created_at, tz, -1).await?;
    let mut active: follow_up::ActiveModel = note.clone().into();
    active.deleted_at = Set(Some(now));
    active.update(db).await?;
    let last = recent(db, note.customer_id, 1).await?.first().map(|n| n.created_at);
    customer::Entity::update_many()
        .col_expr(customer::Column::LastFollowUpAt, Expr::val(last))
        .filter(customer::Column::Id.eq(note.customer_id))
        .exec(db)
        .await?;
    Ok(Some(note))
}

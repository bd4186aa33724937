//! A member's text message: a chat command. The command's changes and its answer are committed
//! together; then the answer goes to the request still waiting for it (a passive reply). When nobody
//! waits (a burst), the answer queued for the message API and the row's outcome are part of that same
//! commit. A replay finds the answer already recorded and never runs the command twice.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::bot::Bot;
use crate::db::entity::inbox;
use crate::db::{begin_write, now_ms};
use crate::inbox::{HandlerError, Outcome, finish_within};
use crate::notify;
use crate::services::Services;
use crate::wecom::api::MessageBody;

pub async fn handle(s: &Services, bot: &Bot, row: &inbox::Model, content: &str) -> Result<Outcome, HandlerError> {
    let userid = row.from_user.clone().unwrap_or_default();
    if let Some(reply) = &row.reply {
        // Answered before a crash or a replay: only make sure the answer went out.
        if row.reply_mode.is_none() {
            deliver(s, row, &userid, reply).await?;
        }
        return Ok(Outcome::Processed("already answered".into()));
    }
    if userid.is_empty() || !bot.may_talk(&userid).await? {
        s.answers.offer(&row.dedupe_key, None);
        tracing::info!(from = %userid, "message from someone who is not an active member; ignored");
        return Ok(Outcome::Ignored("not from an active member".into()));
    }
    let txn = begin_write(&s.db).await?;
    let reply = bot.answer(&txn, &userid, content, now_ms()).await?;
    let set_reply = inbox::Entity::update_many().col_expr(inbox::Column::Reply, Expr::val(reply.clone()));
    let Some(waiter) = s.answers.take_waiter(&row.dedupe_key) else {
        // Nobody waits (a burst, or the request gave up): the command, its answer queued for the
        // message API and the row's outcome commit together.
        queue_answer(&txn, row, &userid, &reply).await?;
        let note = "answered (message)";
        let set_mode = set_reply.col_expr(inbox::Column::ReplyMode, Expr::val("message"));
        if !finish_within(&txn, row, set_mode, note).await? {
            txn.rollback().await?;
            return Err(HandlerError::Transient(
                "the row's lease ran out; the worker holding it now answers".into(),
            ));
        }
        txn.commit().await?;
        s.notifier.wake();
        return Ok(Outcome::Committed(note.into()));
    };
    // The answer is committed before it is handed over, and its delivery mode recorded after: a
    // retry of the message arriving in between waits for the mode rather than carry the answer too.
    set_reply.filter(inbox::Column::Id.eq(row.id)).exec(&txn).await?;
    txn.commit().await?;
    let mode = if waiter.send(Some(reply.clone())).is_ok() {
        "passive"
    } else {
        send_as_message(s, row, &userid, &reply).await?;
        "message"
    };
    let note = format!("answered ({mode})");
    let set_mode = || inbox::Entity::update_many().col_expr(inbox::Column::ReplyMode, Expr::val(mode));
    if !finish_within(&s.db, row, set_mode(), &note).await? {
        // Another worker holds the row now: it must find the answer delivered.
        set_mode().filter(inbox::Column::Id.eq(row.id)).exec(&s.db).await?;
    }
    Ok(Outcome::Committed(note))
}

/// Sends the answer once: to the waiting request, or through the message API.
async fn deliver(s: &Services, row: &inbox::Model, userid: &str, reply: &str) -> Result<&'static str, HandlerError> {
    let mode = if s.answers.offer(&row.dedupe_key, Some(reply.to_owned())) {
        "passive"
    } else {
        send_as_message(s, row, userid, reply).await?;
        "message"
    };
    inbox::Entity::update_many()
        .col_expr(inbox::Column::ReplyMode, Expr::val(mode))
        .filter(inbox::Column::Id.eq(row.id))
        .exec(&s.db)
        .await?;
    Ok(mode)
}

async fn send_as_message(s: &Services, row: &inbox::Model, userid: &str, reply: &str) -> Result<(), HandlerError> {
    queue_answer(&s.db, row, userid, reply).await?;
    s.notifier.wake();
    Ok(())
}

/// Queues the answer for the message API, once per message whatever the replays.
async fn queue_answer(db: &impl ConnectionTrait, row: &inbox::Model, userid: &str, reply: &str) -> Result<(), DbErr> {
    let key = format!("reply:{}", row.dedupe_key);
    notify::enqueue(db, &key, userid, &MessageBody::text(reply)).await?;
    Ok(())
}

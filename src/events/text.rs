//! A member's text message: a chat command. The command's changes and its answer are committed
//! together; then the answer goes to the request still waiting for it (a passive reply), or else
//! through the message API. A replay finds the answer already recorded and never runs the command
//! twice.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::bot::Bot;
use crate::db::entity::inbox;
use crate::db::{begin_write, now_ms};
use crate::inbox::{HandlerError, Outcome};
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
    inbox::Entity::update_many()
        .col_expr(inbox::Column::Reply, Expr::val(reply.clone()))
        .filter(inbox::Column::Id.eq(row.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    let mode = deliver(s, row, &userid, &reply).await?;
    Ok(Outcome::Processed(format!("answered ({mode})")))
}

/// Sends the answer once: to the waiting request, or through the message API.
async fn deliver(s: &Services, row: &inbox::Model, userid: &str, reply: &str) -> Result<&'static str, HandlerError> {
    let mode = if s.answers.offer(&row.dedupe_key, Some(reply.to_owned())) {
        "passive"
    } else {
        let key = format!("reply:{}", row.dedupe_key);
        notify::enqueue(&s.db, &key, userid, &MessageBody::text(reply)).await?;
        s.notifier.wake();
        "message"
    };
    inbox::Entity::update_many()
        .col_expr(inbox::Column::ReplyMode, Expr::val(mode))
        .filter(inbox::Column::Id.eq(row.id))
        .exec(&s.db)
        .await?;
    Ok(mode)
}

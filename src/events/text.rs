//! A member's text message: a chat command, answered once (see [`super::answer`]).

use crate::bot::Bot;
use crate::db::entity::inbox;
use crate::db::now_ms;
use crate::inbox::{HandlerError, Outcome};
use crate::services::Services;

use super::answer::{Fallback, answer_once};

pub async fn handle(s: &Services, bot: &Bot, row: &inbox::Model, content: &str) -> Result<Outcome, HandlerError> {
    let userid = row.from_user.clone().unwrap_or_default();
    if row.reply.is_none() && (userid.is_empty() || !bot.may_talk(&userid).await?) {
        s.answers.offer(&row.dedupe_key, None);
        tracing::info!(from = %userid, "message from someone who is not an active member; ignored");
        return Ok(Outcome::Ignored("not from an active member".into()));
    }
    answer_once(s, row, &userid, Fallback::Message, async |txn| {
        bot.answer(txn, &userid, content, now_ms()).await
    })
    .await
}

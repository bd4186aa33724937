//! A member's text message: a chat command, answered once (see [`super::answer`]).

use crate::bot::Bot;
use crate::db::entity::inbox;
use crate::db::now_ms;
use crate::inbox::{HandlerError, Outcome};
use crate::services::Services;
use crate::wecom::callback::{Callback, CallbackKind};

use super::answer::{Fallback, answer_once, answer_run};

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

/// How many of a lane's next rows are chat messages that [`handle_run`] answers together: text
/// from the same member, not answered before.
pub fn run_length(rows: &[(inbox::Model, Callback)]) -> usize {
    let sender = rows.first().and_then(|(row, _)| row.from_user.as_deref());
    rows.iter()
        .take_while(|(row, callback)| {
            text_of(callback).is_some()
                && row.reply.is_none()
                && sender.is_some_and(|s| !s.is_empty() && row.from_user.as_deref() == Some(s))
        })
        .count()
}

/// Answers a member's run of chat messages in one transaction (see [`answer_run`]); 0 when the
/// sender may not talk to the bot (each row is then ignored by itself).
pub async fn handle_run(s: &Services, bot: &Bot, rows: &[(inbox::Model, Callback)]) -> Result<usize, HandlerError> {
    let Some(userid) = rows.first().and_then(|(row, _)| row.from_user.clone()) else {
        return Ok(0);
    };
    if !bot.may_talk(&userid).await? {
        return Ok(0);
    }
    let texts: Vec<&str> = rows.iter().filter_map(|(_, callback)| text_of(callback)).collect();
    let models: Vec<&inbox::Model> = rows.iter().map(|(row, _)| row).collect();
    answer_run(s, &models, &userid, async |txn| {
        bot.answer_all(txn, &userid, &texts, now_ms()).await
    })
    .await
}

fn text_of(callback: &Callback) -> Option<&str> {
    match &callback.kind {
        CallbackKind::Text { content, .. } => Some(content),
        _ => None,
    }
}

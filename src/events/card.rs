//! A click on a button of a pushed card: the change it stands for, applied at most once per card,
//! member and action (`bot::cards`), and the card showing what was done — in the click's response,
//! or through `message/update_template_card` (see [`super::answer`]).

use crate::bot::Bot;
use crate::db::entity::inbox;
use crate::db::now_ms;
use crate::inbox::{HandlerError, Outcome};
use crate::services::Services;
use crate::wecom::callback::CardClick;

use super::answer::{Fallback, answer_once};

pub async fn handle(s: &Services, bot: &Bot, row: &inbox::Model, click: &CardClick) -> Result<Outcome, HandlerError> {
    let userid = row.from_user.clone().unwrap_or_default();
    if row.reply.is_none() && (userid.is_empty() || !bot.may_talk(&userid).await?) {
        s.answers.offer(&row.dedupe_key, None);
        tracing::info!(from = %userid, "card click from someone who is not an active member; ignored");
        return Ok(Outcome::Ignored("not from an active member".into()));
    }
    let fallback = Fallback::CardUpdate {
        response_code: &click.response_code,
    };
    answer_once(s, row, &userid, fallback, async |txn| {
        bot.click(txn, &userid, click, now_ms()).await
    })
    .await
}

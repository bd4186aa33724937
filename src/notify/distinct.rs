//! Distinct messages stay distinct for WeCom. Every message goes out with WeCom's duplicate check
//! (so that a resend after a lost response is delivered once), and that check knows a message only
//! by its request: a second message with the same body to the same member within the window would
//! be swallowed — two notes on one customer answered `✅ 已记录跟进 · 孙丽` twice, say. Before its
//! first attempt a message is therefore compared with those sent to the member within the window,
//! and if its body matches one, it is varied invisibly (a zero-width space at the end of its text)
//! until it matches none. The body as sent is stored, so its own resends stay identical.

use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

use crate::db::entity::outbox;
use crate::wecom::api::MessageBody;
use crate::wecom::crypto::sha1_hex;

/// Invisible in WeCom's chat, yet makes the request differ.
const VARIATION: char = '\u{200B}';
/// A member is sent at most 30 messages a minute, so this many identical ones within one window
/// cannot happen; the bound only keeps a broken check from looping.
const MAX_VARIATIONS: usize = 64;

/// What WeCom compares, reduced to a digest.
fn digest(body: &MessageBody) -> String {
    sha1_hex(serde_json::to_string(body).unwrap_or_default())
}

/// Makes `body` differ from every message sent to `recipient` since `since` (other than the
/// message `id` itself) and returns the digest it goes out with. True in the second place when the
/// body was varied (the caller stores it). Call under the recipient's send lock
/// ([`super::limit::wait_needed`]), so two messages cannot both take the same body.
pub async fn make_distinct(
    txn: &DatabaseTransaction,
    id: i64,
    recipient: &str,
    since: i64,
    body: &mut MessageBody,
) -> Result<(String, bool), DbErr> {
    let mut varied = false;
    for _ in 0..MAX_VARIATIONS {
        let current = digest(body);
        let taken = outbox::Entity::find()
            .filter(outbox::Column::Recipient.eq(recipient))
            .filter(outbox::Column::SentDigest.eq(current.as_str()))
            .filter(outbox::Column::FirstAttemptAt.gte(since))
            .filter(outbox::Column::Id.ne(id))
            .count(txn)
            .await?;
        if taken == 0 || !vary(body) {
            return Ok((current, varied));
        }
        varied = true;
    }
    Ok((digest(body), varied))
}

/// Adds an invisible difference; false for a body that cannot take one (a template card, whose
/// task id already makes it unique).
fn vary(body: &mut MessageBody) -> bool {
    match body {
        MessageBody::Text { text } | MessageBody::Markdown { markdown: text } => text.content.push(VARIATION),
        MessageBody::Textcard { textcard } => textcard.description.push(VARIATION),
        MessageBody::TemplateCard { .. } => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_varied_body_reads_the_same_and_digests_differently() {
        let mut body = MessageBody::text("✅ 已记录跟进 · 孙丽");
        let before = digest(&body);
        assert!(vary(&mut body));
        assert_ne!(digest(&body), before);
        let MessageBody::Text { text } = &body else {
            unreachable!()
        };
        assert_eq!(text.content.trim_end_matches(VARIATION), "✅ 已记录跟进 · 孙丽");
        assert_eq!(digest(&MessageBody::text("✅ 已记录跟进 · 孙丽")), before, "stable");
    }
}

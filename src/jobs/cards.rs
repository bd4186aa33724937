//! Pushes as template cards with one-tap buttons (`jobs.cards`): a reminder due alone as a card of
//! its own — what, when, the customer with a link to their page, the last follow-up — and several
//! due together (or the morning agenda) as one card listing them, a drop-down list choosing the
//! one the buttons act on. The numbers are those of the chat's list, so `完成 3` still works.
//! What a click does is `bot::cards`.

use crate::bot::cards::{buttons, selection};
use crate::texts::{Lang, preview};
use crate::wecom::api::card::{CardAction, MAX_OPTIONS, Row, TemplateCard, valid_task_id};

/// WeCom shows about this many characters of a card's subtitle.
const SUBTITLE_CHARS: usize = 160;

/// A task id unique to this card: what it is, the first reminder it acts on and that reminder's
/// claim count (each push of a reminder is a new claim, so a re-push after a snooze never reuses
/// one), and when it was written (so a reinstalled service never does either). WeCom refuses a task
/// id seen before — which is why a refused resend means the first attempt arrived.
pub fn task_id(prefix: &str, first_reminder: i64, generation: i32, now: i64) -> String {
    let id = format!("{prefix}_{first_reminder}_{generation}_{now}");
    debug_assert!(valid_task_id(&id));
    id
}

/// The card of one reminder.
pub struct Single<'a> {
    pub reminder_id: i64,
    pub text: &'a str,
    /// When it is due, as the rep reads it (with how late, when late).
    pub when: String,
    /// The customer's name, stage, last follow-up and page.
    pub customer: Option<(String, String, String)>,
    pub page: Option<String>,
}

pub fn single(card: Single<'_>, task_id: String, lang: Lang, default_hour: u32) -> TemplateCard {
    let t = |zh: &'static str, en: &'static str| if lang.en() { en } else { zh };
    let title = format!("⏰ {}", preview(card.text, 30));
    let mut out = TemplateCard::buttons(task_id, title, card.when, buttons(lang, card.reminder_id, default_hour));
    if card.text.chars().count() > 30 {
        out.sub_title_text = preview(card.text, SUBTITLE_CHARS);
    }
    if let Some((name, stage, last)) = card.customer {
        out.horizontal_content_list.push(Row {
            kind: u8::from(card.page.is_some()),
            keyname: t("客户", "Customer").into(),
            value: name,
            url: card.page.clone().unwrap_or_default(),
        });
        out.horizontal_content_list.push(Row {
            kind: 0,
            keyname: t("阶段", "Stage").into(),
            value: stage,
            url: String::new(),
        });
        out.horizontal_content_list.push(Row {
            kind: 0,
            keyname: t("最近跟进", "Last note").into(),
            value: last,
            url: String::new(),
        });
    }
    if let Some(url) = card.page {
        out.card_action = Some(CardAction { kind: 1, url });
    }
    out
}

/// A card listing several reminders: `lines` as the rep reads them (numbered), `options` the
/// reminders (id, short label) the buttons may act on, in the list's order.
pub struct List {
    pub title: String,
    pub desc: String,
    pub lines: Vec<String>,
    pub options: Vec<(i64, String)>,
    /// Said under the list when not every line fits.
    pub more: String,
}

pub fn list(card: List, task_id: String, lang: Lang, default_hour: u32) -> TemplateCard {
    let options: Vec<(i64, String)> = card.options.into_iter().take(MAX_OPTIONS).collect();
    let first = options.first().map_or(0, |(id, _)| *id);
    let mut out = TemplateCard::buttons(task_id, card.title, card.desc, buttons(lang, first, default_hour));
    out.sub_title_text = fit_lines(&card.lines, &card.more);
    if options.len() > 1 {
        out.button_selection = Some(selection(lang, &options));
    }
    out
}

/// As many whole lines as fit in the subtitle, then `more` when some did not.
fn fit_lines(lines: &[String], more: &str) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let line = preview(line, 40);
        let len = line.chars().count() + 1;
        let room_for_more = if i + 1 < lines.len() {
            more.chars().count() + 1
        } else {
            0
        };
        if used + len + room_for_more > SUBTITLE_CHARS && !shown.is_empty() {
            shown.push(more.to_owned());
            return shown.join("\n");
        }
        used += len;
        shown.push(line);
    }
    shown.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_card_acts_on_its_reminder_and_links_the_customer() {
        let card = single(
            Single {
                reminder_id: 7,
                text: "给王总回电话",
                when: "今天 15:00".into(),
                customer: Some(("王总".into(), "需求确认".into(), "昨天 报价已发".into())),
                page: Some("https://crm.example.com/web/customers/wm1".into()),
            },
            task_id("rem", 7, 1, 1_700_000_000_000),
            Lang::Zh,
            9,
        );
        assert_eq!(card.check(), Ok(()));
        assert_eq!(card.task_id, "rem_7_1_1700000000000");
        assert_eq!(card.main_title.title, "⏰ 给王总回电话");
        let keys: Vec<&str> = card.button_list.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["done:7", "hour:7", "tomorrow:7"]);
        assert_eq!(
            card.horizontal_content_list[0].kind, 1,
            "the customer links to their page"
        );
        assert!(card.card_action.is_some());
    }

    #[test]
    fn a_list_card_offers_its_reminders_and_says_when_lines_were_left_out() {
        let lines: Vec<String> = (1..=12)
            .map(|i| format!("{i}. 15:00 · 客户{i} · 回电话确认报价细节"))
            .collect();
        let options: Vec<(i64, String)> = (1..=12).map(|i| (100 + i, format!("{i}. 客户{i}"))).collect();
        let card = list(
            List {
                title: "⏰ 12 条提醒到期".into(),
                desc: "选一条，再点按钮".into(),
                lines,
                options,
                more: "……发送「待办」查看全部".into(),
            },
            task_id("rem", 101, 1, 1),
            Lang::Zh,
            9,
        );
        assert_eq!(card.check(), Ok(()));
        let selection = card.button_selection.as_ref().unwrap();
        assert_eq!(selection.option_list.len(), MAX_OPTIONS);
        assert_eq!(selection.selected_id, "101");
        assert!(card.sub_title_text.chars().count() <= SUBTITLE_CHARS);
        assert!(card.sub_title_text.ends_with("……发送「待办」查看全部"));
        assert!(card.sub_title_text.starts_with("1. 15:00"));
    }
}

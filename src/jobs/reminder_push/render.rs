//! The pushes of due reminders as the rep reads them: one reminder with its customer, stage and last
//! follow-up; several due together as one numbered list — in parts when WeCom's size limit calls
//! for it, the numbers running on across the parts so that `完成 7` means the same in each.

use std::collections::BTreeMap;

use sea_orm::{DbErr, EntityTrait};

use crate::bot::replies;
use crate::crm::customers;
use crate::db::entity::{customer, reminder};
use crate::jobs::cards;
use crate::notify::{Payload, ReminderRef};
use crate::services::Services;
use crate::texts::Lang;
use crate::texts::{cut_to, preview, short_day};
use crate::wecom::api::card::MAX_OPTIONS;
use crate::wecom::api::{MAX_CONTENT_BYTES, MessageBody};

/// A reminder is shown as late once it is this much past due.
const LATE_AFTER_MS: i64 = 5 * 60_000;
/// A reminder's own text is cut to this many bytes in a push (the rest is one `待办` away).
const TEXT_BYTES: usize = 600;

/// The push for `group` — reminders of one rep, in order — as one or more messages, each within
/// WeCom's size limit and carrying the reminders it lists.
pub async fn render(s: &Services, group: &[reminder::Model], now: i64) -> Result<Vec<Payload>, DbErr> {
    let tz = s.tz();
    let mut customers_by_id = BTreeMap::new();
    for id in group.iter().filter_map(|r| r.customer_id) {
        if let Some(c) = customer::Entity::find_by_id(id).one(&s.db).await? {
            customers_by_id.insert(id, c);
        }
    }
    let late = |r: &reminder::Model| {
        if now - r.due_at > LATE_AFTER_MS {
            format!("（{}）", replies::overdue(r.due_at, now, Lang::Zh))
        } else {
            String::new()
        }
    };
    if s.config.jobs.cards {
        return as_cards(s, group, &customers_by_id, now).await;
    }
    let refs = |rs: &[&reminder::Model]| -> Vec<ReminderRef> {
        rs.iter()
            .map(|r| ReminderRef {
                id: r.id,
                due_at: r.due_at,
            })
            .collect()
    };
    if let [r] = group {
        let mut lines = vec![format!("**⏰ 提醒：{}**", cut_to(&r.text, TEXT_BYTES))];
        if let Some(c) = r.customer_id.and_then(|id| customers_by_id.get(&id)) {
            let stage = c.stage.clone().unwrap_or_else(|| "未设置".into());
            lines.push(format!("> 客户：{} · 阶段：{stage}", customers::display(c)));
            let last = customers::last_follow_up(&s.db, c.id).await?;
            let last = last.map_or_else(
                || "暂无".to_owned(),
                |f| format!("{} {}", short_day(f.created_at, tz), preview(&f.content, 40)),
            );
            lines.push(format!("> 最近跟进：{last}"));
        }
        lines.push(format!("> 时间：{}{}", replies::when(r.due_at, tz, Lang::Zh), late(r)));
        if let Some(page) = r
            .customer_id
            .and_then(|id| customers_by_id.get(&id))
            .and_then(|c| s.config.web.customer_url(&c.external_userid))
        {
            lines.push(format!("> [打开客户资料]({page})"));
        }
        lines.push("回复「完成 1」，或「推迟 1 明天9点」".into());
        return Ok(vec![Payload {
            body: MessageBody::markdown(cut_to(&lines.join("\n"), MAX_CONTENT_BYTES)),
            reminders: refs(&[r]),
            numbered: Vec::new(),
            answers: Vec::new(),
        }]);
    }
    let items: Vec<(String, &reminder::Model)> = group
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let customer = r.customer_id.and_then(|id| customers_by_id.get(&id));
            let who = customer
                .map(|c| match s.config.web.customer_url(&c.external_userid) {
                    Some(page) => format!(" · [{}]({page})", customers::display(c)),
                    None => format!(" · {}", customers::display(c)),
                })
                .unwrap_or_default();
            let line = format!(
                "{}. {}{who} · {}{}",
                i + 1,
                replies::when_near(r.due_at, now, tz, Lang::Zh),
                cut_to(&r.text, TEXT_BYTES),
                late(r)
            );
            (line, r)
        })
        .collect();
    Ok(pack(group.len(), items))
}

fn refs_of(rs: &[reminder::Model]) -> Vec<ReminderRef> {
    rs.iter()
        .map(|r| ReminderRef {
            id: r.id,
            due_at: r.due_at,
        })
        .collect()
}

/// The push as template cards (`jobs.cards`): one card for a reminder due alone, else cards
/// listing up to ten each, the numbers running on, in the rep's chat language.
async fn as_cards(
    s: &Services,
    group: &[reminder::Model],
    customers_by_id: &BTreeMap<i64, customer::Model>,
    now: i64,
) -> Result<Vec<Payload>, DbErr> {
    let (tz, hour) = (s.tz(), s.config.bot.default_hour);
    let lang = crate::bot::language_of(s, &group[0].owner_userid).await;
    let t = |zh: String, en: String| if lang.en() { en } else { zh };
    let late = |r: &reminder::Model| {
        if now - r.due_at > LATE_AFTER_MS {
            t(
                format!("（{}）", replies::overdue(r.due_at, now, lang)),
                format!(" ({})", replies::overdue(r.due_at, now, lang)),
            )
        } else {
            String::new()
        }
    };
    let customer_of = |r: &reminder::Model| r.customer_id.and_then(|id| customers_by_id.get(&id));
    if let [r] = group {
        let mut customer = None;
        if let Some(c) = customer_of(r) {
            let none = || t("暂无".into(), "none".into());
            let last = customers::last_follow_up(&s.db, c.id).await?.map_or_else(none, |f| {
                format!("{} {}", short_day(f.created_at, tz), preview(&f.content, 24))
            });
            let stage = c.stage.clone().unwrap_or_else(|| t("未设置".into(), "not set".into()));
            customer = Some((customers::display(c), stage, last));
        }
        let card = cards::single(
            cards::Single {
                reminder_id: r.id,
                text: &r.text,
                when: format!("{}{}", replies::when(r.due_at, tz, lang), late(r)),
                customer,
                page: customer_of(r).and_then(|c| s.config.web.customer_url(&c.external_userid)),
            },
            cards::task_id("rem", r.id, r.attempts, now),
            lang,
            hour,
        );
        return Ok(vec![Payload {
            body: MessageBody::template_card(card),
            reminders: refs_of(group),
            numbered: Vec::new(),
            answers: Vec::new(),
        }]);
    }
    let chunks: Vec<&[reminder::Model]> = group.chunks(MAX_OPTIONS).collect();
    let parts = chunks.len();
    let everyone: Vec<i64> = group.iter().map(|r| r.id).collect();
    let mut payloads = Vec::with_capacity(parts);
    let mut number = 0;
    for (part, chunk) in chunks.into_iter().enumerate() {
        let (mut lines, mut options) = (Vec::new(), Vec::new());
        for r in chunk {
            number += 1;
            let who = customer_of(r)
                .map(|c| format!(" · {}", customers::display(c)))
                .unwrap_or_default();
            lines.push(format!(
                "{number}. {}{who} · {}{}",
                replies::when_near(r.due_at, now, tz, lang),
                r.text,
                late(r)
            ));
            let label =
                customer_of(r).map_or_else(|| r.text.clone(), |c| format!("{} {}", customers::display(c), r.text));
            options.push((r.id, format!("{number}. {label}")));
        }
        let of = if parts > 1 {
            format!("（{}/{parts}）", part + 1)
        } else {
            String::new()
        };
        let card = cards::list(
            cards::List {
                title: t(
                    format!("⏰ {} 条提醒到期{of}", group.len()),
                    format!("⏰ {} reminders due{of}", group.len()),
                ),
                desc: t(
                    "选一条再点按钮，或回复「完成 序号」".into(),
                    "Pick one and tap, or reply `done n`".into(),
                ),
                lines,
                options,
                more: t("……发送「待办」查看全部".into(), "… send `todo` for all".into()),
            },
            cards::task_id("rem", chunk[0].id, chunk[0].attempts, now),
            lang,
            hour,
        );
        payloads.push(Payload {
            body: MessageBody::template_card(card),
            reminders: refs_of(chunk),
            numbered: if parts > 1 { everyone.clone() } else { Vec::new() },
            answers: Vec::new(),
        });
    }
    Ok(payloads)
}

const FOOTER: &str = "回复「完成 序号」，或「推迟 序号 明天9点」";

fn header(total: usize, part: usize, parts: usize) -> String {
    if parts == 1 {
        format!("**⏰ {total} 条提醒到期**")
    } else {
        format!("**⏰ {total} 条提醒到期（{part}/{parts}）**")
    }
}

/// Packs numbered lines into as few messages as fit, in order; every part has the header and the
/// footer, and carries the whole list as its numbered list.
fn pack(total: usize, items: Vec<(String, &reminder::Model)>) -> Vec<Payload> {
    // Room for the longest header and the footer around the lines.
    let frame = header(total, 99, 99).len() + FOOTER.len() + 2;
    let mut groups: Vec<Vec<(String, &reminder::Model)>> = vec![Vec::new()];
    let mut used = 0;
    for (line, r) in items {
        let current = groups.last_mut().expect("one group at least");
        if !current.is_empty() && frame + used + line.len() + 1 > MAX_CONTENT_BYTES {
            groups.push(Vec::new());
            used = 0;
        }
        used += line.len() + 1;
        groups.last_mut().expect("one group at least").push((line, r));
    }
    let parts = groups.len();
    let everyone: Vec<i64> = groups.iter().flatten().map(|(_, r)| r.id).collect();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, lines)| {
            let mut text = vec![header(total, i + 1, parts)];
            text.extend(lines.iter().map(|(line, _)| line.clone()));
            text.push(FOOTER.into());
            Payload {
                body: MessageBody::markdown(text.join("\n")),
                reminders: lines
                    .iter()
                    .map(|(_, r)| ReminderRef {
                        id: r.id,
                        due_at: r.due_at,
                    })
                    .collect(),
                numbered: if parts > 1 { everyone.clone() } else { Vec::new() },
                answers: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entity::reminder::{DeliveryState, ReminderStatus};

    fn reminder(id: i64) -> reminder::Model {
        reminder::Model {
            id,
            customer_id: None,
            owner_userid: "rep".into(),
            created_by: "rep".into(),
            text: String::new(),
            due_at: 1_000 + id,
            status: ReminderStatus::Open,
            source: "manual".into(),
            delivery_state: DeliveryState::Claimed,
            claimed_by: None,
            lease_until: None,
            sent_at: None,
            msgid: None,
            attempts: 1,
            last_error: None,
            done_at: None,
            retry_at: 0,
            created_at: 0,
            updated_at: 0,
            outbox_id: None,
        }
    }

    #[test]
    fn a_long_merge_is_split_into_parts_that_fit_with_the_numbers_running_on() {
        let models: Vec<reminder::Model> = (1..=10).map(reminder).collect();
        let items = models
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("{}. 今天 15:00 · {}", i + 1, "很长的提醒".repeat(40)), r))
            .collect();
        let parts = pack(10, items);
        assert!(parts.len() > 1, "{} part(s)", parts.len());
        let mut numbers = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let content = part.body.content().unwrap();
            assert!(
                content.len() <= MAX_CONTENT_BYTES,
                "part {i} has {} bytes",
                content.len()
            );
            assert!(content.starts_with(&format!("**⏰ 10 条提醒到期（{}/{}）**", i + 1, parts.len())));
            assert!(content.ends_with(FOOTER));
            assert_eq!(
                part.numbered,
                (1..=10).collect::<Vec<i64>>(),
                "the whole list, in every part"
            );
            for r in &part.reminders {
                let number = content
                    .lines()
                    .find(|l| l.contains("很长的提醒"))
                    .map(|_| r.id)
                    .unwrap();
                numbers.push(number);
            }
        }
        assert_eq!(
            numbers,
            (1..=10).collect::<Vec<i64>>(),
            "each reminder in exactly one part, in order"
        );
        let lines: Vec<&str> = parts
            .iter()
            .flat_map(|p| {
                p.body
                    .content()
                    .unwrap()
                    .lines()
                    .filter(|l| l.contains("很长"))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.starts_with(&format!("{}. ", i + 1)), "numbers run on: {line}");
        }
    }

    #[test]
    fn a_short_merge_is_one_message_numbered_by_its_reminders() {
        let models: Vec<reminder::Model> = (1..=3).map(reminder).collect();
        let items = models.iter().map(|r| (format!("{}. 短", r.id), r)).collect();
        let parts = pack(3, items);
        assert_eq!(parts.len(), 1);
        assert!(
            parts[0]
                .body
                .content()
                .unwrap()
                .starts_with("**⏰ 3 条提醒到期**\n1. 短")
        );
        assert!(parts[0].numbered.is_empty());
        assert_eq!(parts[0].numbered_list(), vec![1, 2, 3]);
    }
}

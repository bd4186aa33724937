//! The morning jobs: stale-lead nudges (a customer in an open stage left without follow-up reminds
//! its owner, and later its owner's leader), then each rep's agenda — one message with today's and
//! overdue reminders, numbered so that `完成 n` works on them. Each happens once per customer or
//! rep per occasion, whatever the number of instances or restarts (run records).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use crate::bot::replies;
use crate::config::StaleRule;
use crate::crm::audit::Actor;
use crate::crm::risk::quiet_in_open_stage;
use crate::crm::{customers, members, reminders};
use crate::db::begin_write;
use crate::db::entity::job_run::RunStatus;
use crate::db::entity::{customer, member, reminder};
use crate::db::runs;
use crate::notify::{self, Payload};
use crate::services::Services;
use crate::texts::Lang;
use crate::texts::date_start;
use crate::wecom::api::MessageBody;

const DAY_MS: i64 = 86_400_000;
/// Run records: one per customer and quiet spell (keyed by when the spell began).
const NUDGE: &str = "stale_nudge";
const ESCALATION: &str = "stale_escalation";

fn rule_for<'a>(rules: &'a [StaleRule], stage: &str) -> Option<&'a StaleRule> {
    rules
        .iter()
        .find(|r| r.stage == stage)
        .or_else(|| rules.iter().find(|r| r.stage.is_empty()))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaleReport {
    pub reminded: usize,
    pub escalated: usize,
}

/// Nudges owners (and then leaders) about customers in an open stage without a follow-up for the
/// rule's number of days. Once per customer per quiet spell: a new follow-up starts a new one.
pub async fn nudge_stale(s: &Services, now: i64) -> Result<StaleReport, DbErr> {
    let mut report = StaleReport::default();
    let Some(soonest) = s.config.stale.iter().map(|r| r.remind_after_days).min() else {
        return Ok(report);
    };
    let threshold = now - i64::from(soonest) * DAY_MS;
    let stages = crate::crm::stages::current(&s.db, &s.config).await?;
    let quiet = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.is_not_null())
        .filter(quiet_in_open_stage(&stages, threshold))
        .all(&s.db)
        .await?;
    // Most quiet customers were nudged on an earlier day: skip them without a transaction each.
    let done = runs::recent(&s.db, &[NUDGE, ESCALATION], now - 400 * DAY_MS).await?;
    for c in quiet {
        let (Some(stage), Some(owner)) = (c.stage.clone(), c.owner_userid.clone()) else {
            continue;
        };
        let Some(rule) = rule_for(&s.config.stale, &stage) else {
            continue;
        };
        let since = c.last_follow_up_at.unwrap_or(c.created_at);
        let days = (now - since) / DAY_MS;
        let (scope, spell) = (c.id.to_string(), since.to_string());
        let due = |job: &'static str, after_days: u32| {
            days >= i64::from(after_days) && !done.contains(&(job.to_owned(), scope.clone(), spell.clone()))
        };
        let (nudge, escalate) = (
            due(NUDGE, rule.remind_after_days),
            due(ESCALATION, rule.escalate_after_days),
        );
        if !nudge && !escalate {
            continue;
        }
        let txn = begin_write(&s.db).await?;
        if nudge && runs::try_start(&txn, NUDGE, &scope, &spell).await? {
            let text = format!("{days} 天未跟进（{stage}），联系一下");
            reminders::create(&txn, &owner, &Actor::System, Some(c.id), &text, now, "stale", now).await?;
            report.reminded += 1;
        }
        if escalate && runs::try_start(&txn, ESCALATION, &scope, &spell).await? {
            let rep = members::display_name(&txn, &owner).await?;
            let text = format!(
                "🕒 {} 已 {days} 天没有跟进（{stage}，负责人 {rep}），请督促。",
                customers::display(&c)
            );
            for leader in members::leaders_of(&txn, &owner).await? {
                let key = format!("stale:{}:{spell}:{leader}", c.id);
                notify::enqueue(&txn, &key, &leader, &MessageBody::text(text.clone())).await?;
            }
            report.escalated += 1;
        }
        txn.commit().await?;
    }
    s.notifier.wake();
    Ok(report)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgendaReport {
    pub sent: usize,
    pub already_sent: usize,
}

/// Sends every active rep with anything due on `date` (or overdue) their agenda for that day.
pub async fn send_agenda(s: &Services, date: NaiveDate, now: i64) -> Result<AgendaReport, DbErr> {
    let tz = s.tz();
    let start = date_start(date, tz);
    let end = date_start(date.succ_opt().unwrap_or(date), tz);
    let due = reminder::Entity::find()
        .filter(reminder::Column::Status.eq(reminders::OPEN))
        .filter(reminder::Column::DueAt.lt(end))
        .order_by_asc(reminder::Column::DueAt)
        .order_by_asc(reminder::Column::Id)
        .all(&s.db)
        .await?;
    let mut by_owner: BTreeMap<String, Vec<reminder::Model>> = BTreeMap::new();
    for r in due {
        by_owner.entry(r.owner_userid.clone()).or_default().push(r);
    }
    let mut report = AgendaReport::default();
    let period = date.to_string();
    for (owner, items) in by_owner {
        let active = member::Entity::find_by_id(owner.clone())
            .one(&s.db)
            .await?
            .is_some_and(|m| m.active);
        if !active {
            continue;
        }
        if runs::exists(&s.db, "agenda", &owner, &period).await? {
            report.already_sent += 1;
            continue;
        }
        let mut names = BTreeMap::new();
        for id in items.iter().filter_map(|r| r.customer_id) {
            if let Some(c) = customer::Entity::find_by_id(id).one(&s.db).await? {
                names.insert(id, c.name);
            }
        }
        let (overdue, today): (Vec<&reminder::Model>, Vec<&reminder::Model>) =
            items.iter().partition(|r| r.due_at < start.min(now));
        let shown: Vec<&reminder::Model> = overdue.iter().chain(today.iter()).copied().take(30).collect();
        let body = if s.config.jobs.cards {
            let lang = crate::bot::language_of(s, &owner).await;
            agenda_card(s, &items, &shown, overdue.len(), &names, (start, now), lang)
        } else {
            agenda_markdown(&items, &shown, overdue.len(), &names, (start, now), tz)
        };
        let payload = Payload {
            body,
            reminders: Vec::new(),
            numbered: shown.iter().map(|r| r.id).collect(),
            answers: Vec::new(),
        };
        let txn = begin_write(&s.db).await?;
        if runs::try_start(&txn, "agenda", &owner, &period).await? {
            notify::enqueue_payload(&txn, &format!("agenda:{owner}:{period}"), &owner, &payload).await?;
            runs::finish(
                &txn,
                "agenda",
                &owner,
                &period,
                RunStatus::Done,
                &format!("{} reminders", items.len()),
            )
            .await?;
            report.sent += 1;
        } else {
            report.already_sent += 1;
        }
        txn.commit().await?;
    }
    s.notifier.wake();
    Ok(report)
}

/// The agenda as markdown: overdue, then today, numbered.
fn agenda_markdown(
    items: &[reminder::Model],
    shown: &[&reminder::Model],
    overdue: usize,
    names: &BTreeMap<i64, String>,
    (start, now): (i64, i64),
    tz: chrono_tz::Tz,
) -> MessageBody {
    let mut lines = vec![format!("**☀️ 早上好，今天的待办（{}）**", items.len())];
    for (i, r) in shown.iter().enumerate() {
        if i == 0 && overdue > 0 {
            lines.push("逾期：".into());
        }
        if i == overdue {
            lines.push("今天：".into());
        }
        lines.push(format!(
            "{}. {}",
            i + 1,
            agenda_line(r, names, (start, now), tz, Lang::Zh)
        ));
    }
    if items.len() > shown.len() {
        lines.push(format!("还有 {} 条，发送「待办」查看。", items.len() - shown.len()));
    }
    lines.push("回复「完成 序号」标记完成，「推迟 序号 时间」改期。".into());
    MessageBody::markdown(lines.join("\n"))
}

/// The agenda as a card (`jobs.cards`): the list, and buttons acting on the reminder chosen.
fn agenda_card(
    s: &Services,
    items: &[reminder::Model],
    shown: &[&reminder::Model],
    overdue: usize,
    names: &BTreeMap<i64, String>,
    (start, now): (i64, i64),
    lang: Lang,
) -> MessageBody {
    let tz = s.tz();
    let t = |zh: String, en: String| if lang.en() { en } else { zh };
    let lines: Vec<String> = shown
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}. {}", i + 1, agenda_line(r, names, (start, now), tz, lang)))
        .collect();
    let options = shown
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let label = r
                .customer_id
                .and_then(|id| names.get(&id))
                .map_or_else(|| r.text.clone(), |n| format!("{n} {}", r.text));
            (r.id, format!("{}. {label}", i + 1))
        })
        .collect();
    let today = shown.len() - overdue;
    let card = super::cards::list(
        super::cards::List {
            title: t(
                format!("☀️ 今天的待办（{}）", items.len()),
                format!("☀️ Today's to-dos ({})", items.len()),
            ),
            desc: t(
                format!("逾期 {overdue} · 今天 {today} · 选一条再点按钮"),
                format!("{overdue} overdue · {today} today · pick one and tap"),
            ),
            lines,
            options,
            more: t("……发送「待办」查看全部".into(), "… send `todo` for all".into()),
        },
        super::cards::task_id("agd", shown.first().map_or(0, |r| r.id), 0, now),
        lang,
        s.config.bot.default_hour,
    );
    MessageBody::template_card(card)
}

/// One reminder of the agenda: when (how late, when overdue), the customer, the text.
fn agenda_line(
    r: &reminder::Model,
    names: &BTreeMap<i64, String>,
    (start, now): (i64, i64),
    tz: chrono_tz::Tz,
    lang: Lang,
) -> String {
    let who = r
        .customer_id
        .and_then(|id| names.get(&id))
        .map(|n| format!(" · {n}"))
        .unwrap_or_default();
    let when = if r.due_at < start {
        let late = replies::overdue(r.due_at, now, lang);
        if lang.en() {
            format!("{} ({late})", crate::texts::short_day(r.due_at, tz))
        } else {
            format!("{}（{late}）", crate::texts::short_day(r.due_at, tz))
        }
    } else {
        replies::when_near(r.due_at, start, tz, lang)
    };
    format!("{when}{who} · {}", r.text)
}

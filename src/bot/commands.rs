//! What each command does. Every answer states what was stored.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, EntityTrait};

use super::command::{VERBS, Verb};
use super::session::List;
use super::{Ctx, Resolved, Target, replies, time};
use crate::crm::audit::Actor;
use crate::crm::deals::{self, Field};
use crate::crm::reminders::{self, Change};
use crate::crm::risk::Risk;
use crate::crm::search::search_customers;
use crate::crm::undo::{self, Undone};
use crate::crm::{channels, figures, followups, members, plans};
use crate::db::entity::reminder::DeliveryState;
use crate::db::entity::{customer, reminder};
use crate::texts::start_of_day;

/// Reminders listed by `todo` are due within this many days.
const TODO_DAYS: i64 = 7;
const TODO_SHOWN: usize = 30;

impl Ctx<'_> {
    pub(super) fn actor(&self) -> Actor {
        Actor::Member(self.me.to_owned())
    }

    pub(super) fn usage(&self, verb: Verb) -> String {
        replies::help(self.lang, Some(verb))
    }

    pub(super) async fn command(&mut self, verb: Verb, target: Option<Target>, args: String) -> Result<String, DbErr> {
        match verb {
            Verb::Help => Ok(self.help(&args)),
            Verb::Find => self.find(target, args).await,
            Verb::Use => self.use_customer(target, args).await,
            Verb::Info => self.info(target, args).await,
            Verb::Note => self.note(target, args).await,
            Verb::Remind => self.remind(target, args).await,
            Verb::Todo => self.todo().await,
            Verb::Done | Verb::Snooze | Verb::Cancel => self.change_reminder(verb, args).await,
            Verb::Stage | Verb::Status | Verb::Rate | Verb::Tag => self.set_field(verb, target, args).await,
            Verb::Undo => self.undo().await,
            Verb::Summary => self.summary().await,
            Verb::TeamTodo => self.team_todo().await,
            Verb::Idle => self.idle().await,
            Verb::Deal => self.deal(target, args).await,
            Verb::Win | Verb::Lose => self.close_deal(verb, target, args).await,
            Verb::Forecast => self.forecast().await,
            Verb::Pool => self.pool(target, args).await,
            Verb::Claim => self.claim(target, args).await,
            Verb::Release => self.release(target, args).await,
            Verb::Score => self.score(target, args).await,
        }
    }

    fn help(&self, args: &str) -> String {
        let asked = args.trim().trim_start_matches('/').to_lowercase();
        let verb = VERBS
            .iter()
            .find(|(_, en, zh)| en.contains(&asked.as_str()) || zh.contains(&args.trim()))
            .map(|(v, _, _)| *v);
        replies::help(self.lang, verb)
    }

    async fn find(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let q = match target {
            Some(Target::Query(q)) => format!("{q} {args}").trim().to_owned(),
            _ => args,
        };
        if q.is_empty() {
            return Ok(self.usage(Verb::Find));
        }
        let hits = search_customers(self.db, self.me, &q, 10).await?;
        if hits.is_empty() {
            return Ok(self.t(
                &format!("没有找到「{q}」相关的客户。"),
                &format!("No customer matches “{q}”."),
            ));
        }
        self.session.list = Some(List::Customers(hits.iter().map(|h| h.customer.id).collect()));
        let listed: Vec<_> = hits.into_iter().map(|h| (h.customer, h.remark)).collect();
        let heading = self.t(
            &format!("🔍 找到 {} 位客户：", listed.len()),
            &format!("🔍 {} found:", listed.len()),
        );
        let footer = self.t(
            "回复序号设为当前客户，或「详情 序号」查看。",
            "Reply with a number to make one current, or `info <n>`.",
        );
        Ok(format!(
            "{}\n{footer}",
            replies::customer_list(&listed, self.lang, &heading)
        ))
    }

    async fn use_customer(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let target = target.or_else(|| (!args.is_empty()).then(|| Target::Query(args.clone())));
        if target.is_none() {
            return Ok(self.usage(Verb::Use));
        }
        let c = match self.resolve(Verb::Use, target, String::new(), false).await? {
            Resolved::Customer(c, _) => c,
            Resolved::Answer(answer) => return Ok(answer),
        };
        self.session.current = Some(c.id);
        let name = replies::customer_name(&c);
        Ok(self.t(
            &format!("👉 当前客户：{name}\n接下来「记 …」「提醒 …」都记在这位客户名下。"),
            &format!("👉 Current customer: {name}\n`note …` and `remind …` now go to this customer."),
        ))
    }

    async fn info(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let target = target.or_else(|| (!args.is_empty()).then(|| Target::Query(args.clone())));
        let c = match self.resolve(Verb::Info, target, String::new(), false).await? {
            Resolved::Customer(c, _) => c,
            Resolved::Answer(answer) => return Ok(answer),
        };
        let channel = channels::find_by_state(self.db, c.first_state.as_deref().unwrap_or_default()).await?;
        let source = channels::source_name(channel.as_ref(), c.first_state.as_deref());
        let mut notes = Vec::new();
        for note in followups::recent(self.db, c.id, 5).await? {
            let author = members::display_name(self.db, &note.author_userid).await?;
            notes.push((note, author));
        }
        let open = reminders::open_on_customer(self.db, c.id).await?;
        let en = self.lang.en();
        let status = c.lead_status.as_deref().map(|s| deals::status_label(s, en));
        let rating = c
            .rating
            .as_deref()
            .map(|r| format!("{r}（{}）", deals::rating_meaning(r, en)));
        let tags = deals::tags_of(&c);
        let risk = Risk::current(self.db, &self.s.config, self.now).await?.reason(&c);
        Ok(replies::card(
            &c,
            &source,
            &notes,
            &open,
            (c.stage.clone(), status, rating),
            &tags,
            risk.as_deref(),
            self.tz(),
            self.lang,
        ))
    }

    async fn note(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let (c, text) = match self.resolve(Verb::Note, target, args, true).await? {
            Resolved::Customer(c, text) => (c, text),
            Resolved::Answer(answer) => return Ok(answer),
        };
        if text.trim().is_empty() {
            return Ok(self.t(
                "请写上跟进内容，例如：记 已报价，等回复",
                "What happened? e.g. `note quoted, waiting for reply`",
            ));
        }
        followups::add(self.db, c.id, self.me, text.trim(), self.now, self.tz()).await?;
        let name = replies::customer_name(&c);
        Ok(self.t(
            &format!("✅ 已记录跟进 · {name}"),
            &format!("✅ Follow-up saved · {name}"),
        ))
    }

    async fn remind(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        // "remind me in 2h to call back": the reminder is always the sender's own.
        let args = match args.split_once(char::is_whitespace) {
            Some((me, rest)) if me.eq_ignore_ascii_case("me") => rest.trim_start().to_owned(),
            _ if args.eq_ignore_ascii_case("me") => String::new(),
            _ => args,
        };
        if args.trim().is_empty() && target.is_none() {
            return Ok(self.usage(Verb::Remind));
        }
        // On a named or current customer, or one named at the start; otherwise a personal reminder.
        let (customer, rest) = if target.is_some() || self.session.current.is_some() {
            match self.resolve(Verb::Remind, target, args, true).await? {
                Resolved::Customer(c, rest) => (Some(c), rest),
                Resolved::Answer(answer) => return Ok(answer),
            }
        } else {
            match self.leading_name(Verb::Remind, &args).await? {
                Some(Resolved::Customer(c, rest)) => (Some(c), rest),
                Some(Resolved::Answer(answer)) => return Ok(answer),
                None => (None, args),
            }
        };
        let now = DateTime::<Utc>::from_timestamp_millis(self.now)
            .unwrap_or_default()
            .with_timezone(&self.tz());
        let parsed = match time::parse_anywhere(&rest, now, self.s.config.bot.default_hour) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(if self.lang.en() { e.message_en() } else { e.message_zh() }),
        };
        // "… in 2h to call back": the `to` joins the time and the task.
        let rest = match parsed.rest.split_once(char::is_whitespace) {
            Some((to, task)) if to.eq_ignore_ascii_case("to") => task.trim_start().to_owned(),
            _ => parsed.rest,
        };
        let text = if rest.is_empty() {
            self.t("跟进", "follow up")
        } else {
            rest
        };
        let due = parsed.at.timestamp_millis();
        reminders::create(
            self.db,
            self.me,
            &self.actor(),
            customer.as_ref().map(|c| c.id),
            &text,
            due,
            "manual",
            self.now,
        )
        .await?;
        let when = replies::when(due, self.tz(), self.lang);
        let who = customer.as_ref().map(|c| format!(" · {}", c.name)).unwrap_or_default();
        Ok(self.t(
            &format!("⏰ 提醒已设置：{when}{who} · {text}"),
            &format!("⏰ Reminder set: {when}{who} · {text}"),
        ))
    }

    /// The answer `2` to the offer on free text that names a time: the text as a note, and a
    /// reminder for the task at that time.
    pub(super) async fn note_and_remind(
        &mut self,
        customer_id: i64,
        text: &str,
        due_at: i64,
        task: &str,
    ) -> Result<String, DbErr> {
        let me = vec![self.me.to_owned()];
        let Some(c) = customer::Entity::find_by_id(customer_id).one(self.db).await? else {
            return Ok(self.t("这位客户已经不在了。", "That customer is gone."));
        };
        if !crate::crm::customers::accessible(self.db, &c, &me).await? {
            return Ok(self.t(
                "你已不再跟进这位客户，没有保存。",
                "You no longer follow this customer; nothing was saved.",
            ));
        }
        if due_at <= self.now {
            return Ok(self.t(
                "提醒的时间已经过去了，没有保存。请重新发送。",
                "The reminder's time has passed; nothing was saved. Please send it again.",
            ));
        }
        followups::add(self.db, c.id, self.me, text, self.now, self.tz()).await?;
        reminders::create(
            self.db,
            self.me,
            &self.actor(),
            Some(c.id),
            task,
            due_at,
            "manual",
            self.now,
        )
        .await?;
        let name = replies::customer_name(&c);
        let when = replies::when(due_at, self.tz(), self.lang);
        Ok(self.t(
            &format!("✅ 已记录跟进 · {name}\n⏰ 提醒已设置：{when} · {} · {task}", c.name),
            &format!(
                "✅ Follow-up saved · {name}\n⏰ Reminder set: {when} · {} · {task}",
                c.name
            ),
        ))
    }

    async fn todo(&mut self) -> Result<String, DbErr> {
        let until = self.now + TODO_DAYS * 86_400_000;
        let open = reminders::open_for(self.db, self.me, until).await?;
        if open.is_empty() {
            self.session.list = None;
            return Ok(self.t(
                "🎉 接下来 7 天没有待办提醒。用「提醒 明天下午3点 回电话」设置一个。",
                "🎉 Nothing due in the next 7 days. Try `remind tomorrow 3pm call back`.",
            ));
        }
        let ids: Vec<i64> = open.iter().map(|r| r.customer_id.unwrap_or_default()).collect();
        let names: HashMap<i64, String> = customer::Entity::find()
            .all(self.db)
            .await?
            .into_iter()
            .filter(|c| ids.contains(&c.id))
            .map(|c| (c.id, c.name))
            .collect();
        let (overdue, upcoming): (Vec<&reminder::Model>, Vec<&reminder::Model>) =
            open.iter().partition(|r| r.due_at < self.now);
        let shown: Vec<&reminder::Model> = overdue
            .iter()
            .chain(upcoming.iter())
            .copied()
            .take(TODO_SHOWN)
            .collect();
        self.session.list = Some(List::Reminders(shown.iter().map(|r| r.id).collect()));
        let mut lines = vec![self.t(
            &format!("📋 待办（{}）", open.len()),
            &format!("📋 To do ({})", open.len()),
        )];
        for (i, r) in shown.iter().enumerate() {
            if i == 0 && !overdue.is_empty() {
                lines.push(self.t("逾期：", "Overdue:"));
            }
            if i == overdue.len() {
                lines.push(self.t("接下来 7 天：", "Next 7 days:"));
            }
            let who = r
                .customer_id
                .and_then(|id| names.get(&id))
                .map(|n| format!(" · {n}"))
                .unwrap_or_default();
            let late = if r.due_at < self.now {
                format!("（{}）", replies::overdue(r.due_at, self.now, self.lang))
            } else {
                String::new()
            };
            let failed = if r.delivery_state == DeliveryState::Failed {
                let why = r.last_error.clone().unwrap_or_default();
                self.t(&format!("（推送失败：{why}）"), &format!(" (push failed: {why})"))
            } else {
                String::new()
            };
            lines.push(format!(
                "{}. {}{who} · {}{late}{failed}",
                i + 1,
                replies::when_near(r.due_at, self.now, self.tz(), self.lang),
                r.text
            ));
        }
        if open.len() > shown.len() {
            lines.push(self.t(
                &format!("还有 {} 条未显示。", open.len() - shown.len()),
                &format!("{} more not shown.", open.len() - shown.len()),
            ));
        }
        lines.push(self.t(
            "回复「完成 1」「推迟 2 明天9点」「取消 3」。",
            "Reply `done 1`, `snooze 2 tomorrow 9am`, `cancel 3`.",
        ));
        Ok(lines.join("\n"))
    }

    async fn change_reminder(&mut self, verb: Verb, args: String) -> Result<String, DbErr> {
        let (first, rest) = match args.split_once(char::is_whitespace) {
            Some((n, rest)) => (n, rest.trim().to_owned()),
            None => (args.as_str(), String::new()),
        };
        let Ok(n) = first.parse::<usize>() else {
            return Ok(self.usage(verb));
        };
        let Some(List::Reminders(ids)) = &self.session.list else {
            return Ok(self.t(
                "先发送「待办」查看提醒，再用序号操作。",
                "Send `todo` first, then use the numbers it shows.",
            ));
        };
        let Some(&id) = n.checked_sub(1).and_then(|i| ids.get(i)) else {
            return Ok(self.t(
                &format!("待办列表里没有第 {n} 条。"),
                &format!("There is no reminder {n} in the list."),
            ));
        };
        let mine = reminder::Entity::find_by_id(id)
            .one(self.db)
            .await?
            .filter(|r| r.owner_userid == self.me);
        if mine.is_none() {
            return Ok(self.t(
                &format!("第 {n} 条提醒已不在你的待办中。"),
                &format!("Reminder {n} is no longer yours."),
            ));
        }
        let change = match verb {
            Verb::Done => Change::Done,
            Verb::Cancel => Change::Cancel,
            _ => {
                if rest.is_empty() {
                    return Ok(self.usage(Verb::Snooze));
                }
                let now = DateTime::<Utc>::from_timestamp_millis(self.now)
                    .unwrap_or_default()
                    .with_timezone(&self.tz());
                match time::parse(&rest, now, self.s.config.bot.default_hour) {
                    Ok(parsed) => Change::Snooze(parsed.at.timestamp_millis()),
                    Err(e) => return Ok(if self.lang.en() { e.message_en() } else { e.message_zh() }),
                }
            }
        };
        let Some(before) = reminders::change(self.db, id, change, &self.actor(), self.now).await? else {
            return Ok(self.t(
                &format!("第 {n} 条提醒已经完成或取消了。"),
                &format!("Reminder {n} was already done or cancelled."),
            ));
        };
        let who = match before.customer_id {
            Some(cid) => customer::Entity::find_by_id(cid)
                .one(self.db)
                .await?
                .map(|c| format!(" · {}", c.name))
                .unwrap_or_default(),
            None => String::new(),
        };
        Ok(match change {
            Change::Done => {
                let mut answer = self.t(
                    &format!("✅ 已完成：{}{who}", before.text),
                    &format!("✅ Done: {}{who}", before.text),
                );
                if !rest.is_empty()
                    && let Some(cid) = before.customer_id
                {
                    followups::add(self.db, cid, self.me, &rest, self.now, self.tz()).await?;
                    answer.push_str(&self.t("，并记录了跟进", ", follow-up saved"));
                }
                answer
            }
            Change::Cancel => self.t(
                &format!("🗑️ 已取消提醒：{}{who}", before.text),
                &format!("🗑️ Cancelled: {}{who}", before.text),
            ),
            Change::Snooze(at) => {
                let when = replies::when(at, self.tz(), self.lang);
                self.t(
                    &format!("⏰ 已推迟到 {when}：{}{who}", before.text),
                    &format!("⏰ Moved to {when}: {}{who}", before.text),
                )
            }
        })
    }

    async fn set_field(&mut self, verb: Verb, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let (c, value) = match self.resolve(verb, target, args, true).await? {
            Resolved::Customer(c, value) => (c, value.trim().to_owned()),
            Resolved::Answer(answer) => return Ok(answer),
        };
        if value.is_empty() {
            return Ok(self.usage(verb));
        }
        let name = replies::customer_name(&c);
        let en = self.lang.en();
        let actor = self.actor();
        match verb {
            Verb::Stage => {
                let stages = &crate::crm::stages::current(self.db, &self.s.config).await?;
                let Some(stage) = deals::parse_stage(stages, &value) else {
                    let options: Vec<String> = stages
                        .iter()
                        .enumerate()
                        .map(|(i, s)| format!("{}.{s}", i + 1))
                        .collect();
                    return Ok(self.t(
                        &format!("没有「{value}」这个阶段。可选：{}", options.join(" ")),
                        &format!("No stage “{value}”. Stages: {}", options.join(" ")),
                    ));
                };
                let stage = stage.to_owned();
                self.deal_stage(&c, &stage).await
            }
            Verb::Status => {
                let Some(status) = deals::parse_status(&value) else {
                    return Ok(self.t(
                        &format!("没有「{value}」这个状态。可选：确定、有兴趣、热、观望、停止"),
                        &format!("No status “{value}”. Use qualified, interested, hot, on_hold or inactive."),
                    ));
                };
                deals::set(self.db, &c, Field::Status, Some(status.to_owned()), &actor, self.now).await?;
                let planned = plans::apply(self.db, &self.s.config.plans, &c, status, self.now).await?;
                let label = deals::status_label(status, en);
                let plan = match planned {
                    0 => String::new(),
                    n => self.t(
                        &format!("\n已按跟进计划安排 {n} 条提醒，发送「待办」查看。"),
                        &format!("\n{n} follow-up reminders scheduled by the plan; see `todo`."),
                    ),
                };
                Ok(self.t(
                    &format!("🔥 状态：{label} · {name}{plan}"),
                    &format!("🔥 Status: {label} · {name}{plan}"),
                ))
            }
            Verb::Rate => {
                let Some(rating) = deals::parse_rating(&value) else {
                    return Ok(self.t(
                        "评级只能是 A（一个月内）、B（2–3 个月）或 C（以后）。",
                        "Rate A (within a month), B (2–3 months) or C (eventually).",
                    ));
                };
                deals::set(self.db, &c, Field::Rating, Some(rating.to_owned()), &actor, self.now).await?;
                let meaning = deals::rating_meaning(rating, en);
                Ok(self.t(
                    &format!("⭐ 评级：{rating}（{meaning}）· {name}"),
                    &format!("⭐ Rating: {rating} ({meaning}) · {name}"),
                ))
            }
            _ => {
                let mut tags = deals::tags_of(&c);
                let (remove, tag) = match value.strip_prefix('-').or_else(|| value.strip_prefix('－')) {
                    Some(tag) => (true, tag.trim().to_owned()),
                    None => (false, value.clone()),
                };
                if tag.is_empty() || tag.chars().count() > 20 {
                    return Ok(self.t("标签需要 1 到 20 个字。", "A tag has 1 to 20 characters."));
                }
                let present = tags.contains(&tag);
                match (remove, present) {
                    (true, false) => {
                        return Ok(self.t(
                            &format!("{name} 没有标签「{tag}」。"),
                            &format!("{name} has no tag “{tag}”."),
                        ));
                    }
                    (false, true) => {
                        return Ok(self.t(
                            &format!("{name} 已经有标签「{tag}」。"),
                            &format!("{name} already has tag “{tag}”."),
                        ));
                    }
                    (true, true) => tags.retain(|t| t != &tag),
                    (false, false) => tags.push(tag.clone()),
                }
                deals::set(
                    self.db,
                    &c,
                    Field::Tags,
                    Some(deals::tags_json(&tags)),
                    &actor,
                    self.now,
                )
                .await?;
                Ok(if remove {
                    self.t(
                        &format!("🏷️ 已移除标签「{tag}」· {name}"),
                        &format!("🏷️ Tag “{tag}” removed · {name}"),
                    )
                } else {
                    self.t(
                        &format!("🏷️ 已添加标签「{tag}」· {name}"),
                        &format!("🏷️ Tag “{tag}” added · {name}"),
                    )
                })
            }
        }
    }

    async fn undo(&mut self) -> Result<String, DbErr> {
        let window = i64::try_from(self.s.config.bot.undo_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let minutes = self.s.config.bot.undo_window_secs / 60;
        let stages = crate::crm::stages::current(self.db, &self.s.config).await?;
        let Some(result) = undo::undo_last(self.db, &stages, self.me, window, self.now, self.tz()).await? else {
            return Ok(self.t(
                &format!("没有可撤销的操作（只能撤销 {minutes} 分钟内的上一步）。"),
                &format!("Nothing to undo (only the last {minutes} minutes)."),
            ));
        };
        Ok(match result.undone {
            Undone::Note { preview } => self.t(
                &format!("↩️ 已撤销跟进：{preview}"),
                &format!("↩️ Follow-up removed: {preview}"),
            ),
            Undone::Reminder { text } => self.t(
                &format!("↩️ 已撤销提醒：{text}"),
                &format!("↩️ Reminder removed: {text}"),
            ),
            Undone::ReminderChange { text, .. } => self.t(
                &format!("↩️ 提醒已恢复：{text}"),
                &format!("↩️ Reminder restored: {text}"),
            ),
            Undone::DealCreated { title } => {
                self.t(&format!("↩️ 已撤销商机：{title}"), &format!("↩️ Deal removed: {title}"))
            }
            Undone::DealStage { title, restored } => self.t(
                &format!("↩️ 已撤销修改：商机「{title}」恢复为「{restored}」"),
                &format!("↩️ Undone: deal “{title}” back to “{restored}”"),
            ),
            Undone::Lead {
                claim: true,
                name,
                done: true,
            } => self.t(
                &format!("↩️ 已撤销领取：{name} 回到公海"),
                &format!("↩️ Claim undone: {name} is back in the pool"),
            ),
            Undone::Lead {
                claim: false,
                name,
                done: true,
            } => self.t(
                &format!("↩️ 已撤销退回：{name} 仍由你负责"),
                &format!("↩️ Release undone: {name} is yours again"),
            ),
            Undone::Lead { name, .. } => self.t(
                &format!("{name} 已被他人处理，无法撤销。"),
                &format!("{name} has moved on meanwhile; nothing to undo."),
            ),
            Undone::Field { field, restored } => {
                let restored = match (field, restored) {
                    (Field::Status, Some(s)) => deals::status_label(&s, self.lang.en()),
                    (Field::Tags, Some(json)) => {
                        let tags = serde_json::from_str::<Vec<String>>(&json).unwrap_or_default();
                        if tags.is_empty() {
                            self.t("未设置", "none")
                        } else {
                            tags.join(", ")
                        }
                    }
                    (_, Some(v)) => v,
                    (_, None) => self.t("未设置", "none"),
                };
                let what = field.label(self.lang.en());
                self.t(
                    &format!("↩️ 已撤销修改：{what}恢复为「{restored}」"),
                    &format!("↩️ Undone: {what} back to “{restored}”"),
                )
            }
        })
    }

    async fn summary(&mut self) -> Result<String, DbErr> {
        // A leader gets their team's summary; everyone else their own figures.
        if let Some(team) = crate::report::for_chat(self.s, self.me, self.lang, self.now).await? {
            return Ok(team);
        }
        let tz = self.tz();
        let start = start_of_day(self.now, tz);
        let stages = crate::crm::stages::current(self.db, &self.s.config).await?;
        let won = stages.get(stages.len().saturating_sub(2)).cloned().unwrap_or_default();
        let me = vec![self.me.to_owned()];
        let figures = figures::for_members(self.db, &me, start, self.now + 1, self.now, &won).await?;
        let mine = figures.get(self.me).cloned().unwrap_or_default();
        Ok(replies::summary(&mine, self.now, tz, self.lang))
    }
}

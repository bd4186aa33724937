//! The chat bot: reps work with the CRM by sending text messages to the WeCom app, in Chinese or
//! English. [`Bot::answer`] reads one message (see [`command`]), acts on the CRM inside the caller's
//! transaction, and returns the answer; the conversation's context lives in a [`session`].
//!
//! Which customer a command means: `@name` (a name, remark, pinyin or a number from the last list);
//! without it, the session's current customer; without one, a name of one's own customers at the
//! start of the text. Several candidates are never guessed between: they are listed, and the next
//! message (a number) picks one.

pub mod cards;
pub mod command;
mod commands;
mod deals;
mod holidays;
mod pool;
pub mod replies;
pub mod session;
mod team;
pub mod time;
pub mod time_cases;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait};

use self::command::{Lang, Message, Verb};
use self::session::{List, Pending, Session, Sessions};
use crate::crm::customers;
use crate::crm::members::{self, STATUS_LEFT};
use crate::crm::search::{search_among, search_customers};
use crate::db::entity::{customer, member};
use crate::services::Services;

/// WeCom cuts text messages at 2048 bytes; stay below with room for an ellipsis.
const MAX_REPLY_BYTES: usize = 2000;

/// The language `userid` last chatted in: Chinese when unknown (or the cache is down). Pushes
/// speak it.
pub async fn language_of(services: &Services, userid: &str) -> command::Lang {
    let idle = Duration::from_secs(services.config.bot.session_idle_secs.max(60));
    Sessions::new(&services.cache, idle).load(userid).await.session.lang
}

pub struct Bot {
    services: Arc<Services>,
    sessions: Sessions,
}

impl Bot {
    pub fn new(services: Arc<Services>) -> Self {
        let idle = Duration::from_secs(services.config.bot.session_idle_secs.max(60));
        let sessions = Sessions::new(&services.cache, idle);
        Self { services, sessions }
    }

    /// Whether `userid` is an active member who may use the bot (unknown ones are looked up in
    /// WeCom once). Messages from anyone else are ignored.
    pub async fn may_talk(&self, userid: &str) -> Result<bool, DbErr> {
        let s = &self.services;
        if let Some(m) = member::Entity::find_by_id(userid.to_owned()).one(&s.db).await? {
            return Ok(m.active);
        }
        match s.wecom.get_user(userid).await {
            Ok(m) if m.status != STATUS_LEFT => {
                members::upsert_member(&s.db, &m, crate::db::now_ms()).await?;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) => {
                tracing::warn!(userid, error = %e, "message from a member unknown here and in WeCom");
                Ok(false)
            }
        }
    }

    /// A click on a card's button: the change it stands for, and the short text the card shows
    /// instead of its buttons (in the member's chat language).
    pub async fn click(
        &self,
        txn: &DatabaseTransaction,
        userid: &str,
        click: &crate::wecom::callback::CardClick,
        now: i64,
    ) -> Result<String, DbErr> {
        let lang = self.sessions.load(userid).await.session.lang;
        let s = &self.services;
        cards::click(txn, userid, click, lang, s.tz(), s.config.bot.default_hour, now).await
    }

    /// Answers one message from `userid`, acting within `txn`.
    pub async fn answer(&self, txn: &DatabaseTransaction, userid: &str, text: &str, now: i64) -> Result<String, DbErr> {
        let mut replies = self.answer_all(txn, userid, &[text], now).await?;
        Ok(replies.pop().unwrap_or_default())
    }

    /// Answers `texts`, a run of messages from `userid` in the order they were sent, acting within
    /// `txn`: one answer each, the conversation's context (the current customer, the last list)
    /// carried from one to the next and loaded and saved once.
    pub async fn answer_all(
        &self,
        txn: &DatabaseTransaction,
        userid: &str,
        texts: &[&str],
        now: i64,
    ) -> Result<Vec<String>, DbErr> {
        let loaded = self.sessions.load(userid).await;
        let mut session = loaded.session;
        let mut replies = Vec::with_capacity(texts.len());
        for text in texts {
            let parsed = command::parse(text);
            let lang = match &parsed.message {
                Message::Number(_) => session.lang,
                _ => parsed.lang,
            };
            session.lang = lang;
            let mut ctx = Ctx {
                s: &self.services,
                db: txn,
                me: userid,
                now,
                lang,
                session: &mut session,
            };
            let reply = match parsed.message {
                Message::Number(n) => ctx.number(n).await?,
                Message::Command { verb, target, args } => {
                    ctx.session.pending = None;
                    ctx.command(verb, target.map(Target::Query), args).await?
                }
                Message::Text(text) => ctx.text(text).await?,
            };
            replies.push((reply, lang));
        }
        let saved = self.sessions.save(userid, &session).await;
        let kept = loaded.available && saved;
        Ok(replies
            .into_iter()
            .map(|(mut reply, lang)| {
                if !kept {
                    reply.push_str(if lang.en() {
                        "\n(Context cannot be kept right now: name the customer with @name.)"
                    } else {
                        "\n（暂时记不住上下文，请用 @客户名 指明客户。）"
                    });
                }
                fit(reply)
            })
            .collect())
    }
}

fn fit(mut text: String) -> String {
    if text.len() <= MAX_REPLY_BYTES {
        return text;
    }
    let mut cut = MAX_REPLY_BYTES - 3;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
    text
}

/// A customer reference before it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Query(String),
    Id(i64),
}

/// The outcome of resolving which customer a command means.
enum Resolved {
    /// The customer, and the arguments left once a leading name was taken off.
    Customer(Box<customer::Model>, String),
    /// No single customer: the answer explains (or lists candidates).
    Answer(String),
}

/// One message being answered.
struct Ctx<'a> {
    s: &'a Services,
    db: &'a DatabaseTransaction,
    me: &'a str,
    now: i64,
    lang: Lang,
    session: &'a mut Session,
}

impl Ctx<'_> {
    fn t(&self, zh: &str, en: &str) -> String {
        if self.lang.en() { en.to_owned() } else { zh.to_owned() }
    }

    fn tz(&self) -> chrono_tz::Tz {
        self.s.tz()
    }

    /// Resolves the customer for `verb`. `write`: the member must own or follow the customer (a
    /// leader may look at the team's customers but not change them).
    async fn resolve(
        &mut self,
        verb: Verb,
        target: Option<Target>,
        args: String,
        write: bool,
    ) -> Result<Resolved, DbErr> {
        let scope = if write {
            vec![self.me.to_owned()]
        } else {
            members::visible_userids(self.db, self.me).await?
        };
        let db = self.db;
        let by_id = |id: i64| async move { customer::Entity::find_by_id(id).one(db).await };
        match target {
            Some(Target::Id(id)) => match by_id(id).await? {
                Some(c) if customers::accessible(self.db, &c, &scope).await? => {
                    self.session.current = Some(c.id);
                    Ok(Resolved::Customer(Box::new(c), args))
                }
                Some(c) => Ok(Resolved::Answer(self.not_yours(&c))),
                None => Ok(Resolved::Answer(
                    self.t("这位客户已不存在。", "That customer no longer exists."),
                )),
            },
            Some(Target::Query(q)) => {
                if let Ok(n) = q.parse::<usize>() {
                    let listed = match &self.session.list {
                        Some(List::Customers(ids)) => n.checked_sub(1).and_then(|i| ids.get(i)).copied(),
                        _ => None,
                    };
                    return match listed {
                        Some(id) => Box::pin(self.resolve(verb, Some(Target::Id(id)), args, write)).await,
                        None => Ok(Resolved::Answer(self.t(
                            &format!("列表里没有第 {n} 位客户，先用「查 名字」找一下。"),
                            &format!("There is no customer {n} in the last list; try `find <name>`."),
                        ))),
                    };
                }
                let hits = search_among(self.db, self.me, &scope, &q, 9).await?;
                if hits.is_empty() {
                    if write && let Some(other) = search_customers(self.db, self.me, &q, 1).await?.into_iter().next() {
                        return Ok(Resolved::Answer(self.not_yours(&other.customer)));
                    }
                    return Ok(Resolved::Answer(self.t(
                        &format!("没有找到「{q}」，换个名字、备注或拼音试试。"),
                        &format!("No customer matches “{q}”; try another name, remark or pinyin."),
                    )));
                }
                let lower = q.to_lowercase();
                let exact: Vec<_> = hits
                    .iter()
                    .filter(|h| {
                        h.customer.name.to_lowercase() == lower
                            || h.remark.as_ref().is_some_and(|r| r.to_lowercase() == lower)
                    })
                    .collect();
                let chosen = if hits.len() == 1 {
                    Some(&hits[0])
                } else if exact.len() == 1 {
                    Some(exact[0])
                } else {
                    None
                };
                match chosen {
                    Some(hit) => {
                        self.session.current = Some(hit.customer.id);
                        Ok(Resolved::Customer(Box::new(hit.customer.clone()), args))
                    }
                    None => {
                        let listed: Vec<_> = hits.iter().map(|h| (h.customer.clone(), h.remark.clone())).collect();
                        Ok(Resolved::Answer(self.ask(verb, args, &listed, &q)))
                    }
                }
            }
            None => {
                if let Some(id) = self.session.current
                    && let Some(c) = by_id(id).await?
                    && customers::accessible(self.db, &c, &scope).await?
                {
                    return Ok(Resolved::Customer(Box::new(c), args));
                }
                self.session.current = None;
                if let Some(resolved) = self.leading_name(verb, &args).await? {
                    return Ok(resolved);
                }
                Ok(Resolved::Answer(self.t(
                    &format!(
                        "要记在哪位客户名下？先「选 客户名」，或写成「{} @客户名 …」。",
                        verb.name(Lang::Zh)
                    ),
                    &format!(
                        "Which customer? `use <name>` first, or write `{} @name …`.",
                        verb.name(Lang::En)
                    ),
                )))
            }
        }
    }

    /// One of the member's customers named at the very start of `args` (the longest name wins; two
    /// customers with that name are asked about).
    async fn leading_name(&mut self, verb: Verb, args: &str) -> Result<Option<Resolved>, DbErr> {
        if args.is_empty() {
            return Ok(None);
        }
        let names = customers::own_names(self.db, self.me).await?;
        let Some(longest) = names
            .iter()
            .filter(|(_, n)| args.starts_with(n.as_str()))
            .map(|(_, n)| n.len())
            .max()
        else {
            return Ok(None);
        };
        let matching: Vec<i64> = names
            .iter()
            .filter(|(_, n)| n.len() == longest && args.starts_with(n.as_str()))
            .map(|(id, _)| *id)
            .collect();
        let rest = args[longest..]
            .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | ':' | '：'))
            .to_owned();
        if matching.len() == 1 {
            let c = customer::Entity::find_by_id(matching[0])
                .one(self.db)
                .await?
                .expect("listed just now");
            self.session.current = Some(c.id);
            return Ok(Some(Resolved::Customer(Box::new(c), rest)));
        }
        let mut listed = Vec::new();
        for id in matching {
            if let Some(c) = customer::Entity::find_by_id(id).one(self.db).await? {
                listed.push((c, None));
            }
        }
        let name = args[..longest].to_owned();
        Ok(Some(Resolved::Answer(self.ask(verb, rest, &listed, &name))))
    }

    /// Lists candidates and remembers the question; the next message picks one by number.
    fn ask(&mut self, verb: Verb, args: String, listed: &[(customer::Model, Option<String>)], q: &str) -> String {
        let ids: Vec<i64> = listed.iter().map(|(c, _)| c.id).collect();
        self.session.pending = Some(Pending::Choose {
            candidates: ids.clone(),
            verb,
            args,
        });
        self.session.list = Some(List::Customers(ids));
        let heading = self.t(
            &format!("有 {} 位客户符合「{q}」，回复序号选择：", listed.len()),
            &format!("{} customers match “{q}”; reply with a number:", listed.len()),
        );
        replies::customer_list(listed, self.lang, &heading)
    }

    fn not_yours(&self, c: &customer::Model) -> String {
        let name = replies::customer_name(c);
        self.t(
            &format!("{name} 不是你跟进的客户，你只能查看，不能修改。"),
            &format!("{name} is not your customer: you may look, not change."),
        )
    }

    /// A bare number: answers the pending question, or picks from the last list.
    async fn number(&mut self, n: usize) -> Result<String, DbErr> {
        match self.session.pending.take() {
            Some(Pending::Choose { candidates, verb, args }) => {
                match n.checked_sub(1).and_then(|i| candidates.get(i)) {
                    Some(id) => self.command(verb, Some(Target::Id(*id)), args).await,
                    None => {
                        let len = candidates.len();
                        self.session.pending = Some(Pending::Choose { candidates, verb, args });
                        Ok(self.t(
                            &format!("请回复 1 到 {len} 之间的序号。"),
                            &format!("Please reply with a number from 1 to {len}."),
                        ))
                    }
                }
            }
            Some(Pending::ChooseDeal { deals, action }) => self.chosen_deal(deals, action, n).await,
            Some(Pending::SaveNote { customer_id, text }) if n == 1 => {
                self.command(Verb::Note, Some(Target::Id(customer_id)), text).await
            }
            Some(Pending::SaveNoteOrRemind { customer_id, text, .. }) if n == 1 => {
                self.command(Verb::Note, Some(Target::Id(customer_id)), text).await
            }
            Some(Pending::SaveNoteOrRemind {
                customer_id,
                text,
                due_at,
                task,
            }) if n == 2 => self.note_and_remind(customer_id, &text, due_at, &task).await,
            _ => match self.session.list.clone() {
                Some(List::Customers(_)) => {
                    self.command(Verb::Use, Some(Target::Query(n.to_string())), String::new())
                        .await
                }
                Some(List::Pool(_)) => Ok(self.t(
                    &format!("要领取第 {n} 条线索吗？回复「领取 {n}」。"),
                    &format!("Claim lead {n}? Reply `claim {n}`."),
                )),
                Some(List::Reminders(_)) => Ok(self.t(
                    &format!("要对第 {n} 条提醒做什么？回复「完成 {n}」「推迟 {n} 明天9点」或「取消 {n}」。"),
                    &format!("What about reminder {n}? Reply `done {n}`, `snooze {n} tomorrow 9am` or `cancel {n}`."),
                )),
                None => Ok(self.t("发送「帮助」查看可用命令。", "Send `help` to see the commands.")),
            },
        }
    }

    /// Text that is no command: a hint, and with a current customer (or one of mine named at its
    /// start) an offer to save it as a note — and, when it names a time, to set a reminder then.
    async fn text(&mut self, text: String) -> Result<String, DbErr> {
        if let Some(answer) = self.member_day(&text).await? {
            return Ok(answer);
        }
        let me = vec![self.me.to_owned()];
        let mut customer = None;
        if let Some(id) = self.session.current
            && let Some(c) = customer::Entity::find_by_id(id).one(self.db).await?
            && customers::accessible(self.db, &c, &me).await?
        {
            customer = Some(c);
        }
        if customer.is_none() {
            let names = customers::own_names(self.db, self.me).await?;
            let named: Vec<i64> = names
                .iter()
                .filter(|(_, n)| text.starts_with(n.as_str()))
                .map(|(id, _)| *id)
                .collect();
            if let [id] = named[..] {
                customer = customer::Entity::find_by_id(id).one(self.db).await?;
            }
        }
        if let Some(c) = customer {
            let name = replies::customer_name(&c);
            let now = DateTime::<Utc>::from_timestamp_millis(self.now)
                .unwrap_or_default()
                .with_timezone(&self.tz());
            if let Some((at, task)) = time::find(&text, now, self.s.config.bot.default_hour) {
                let due_at = at.timestamp_millis();
                let when = replies::when(due_at, self.tz(), self.lang);
                let task = if task.is_empty() {
                    self.t("跟进", "follow up")
                } else {
                    task
                };
                let answer = self.t(
                    &format!(
                        "没看懂这条消息。要记到 {name} 名下吗？\n1 记为跟进\n2 记为跟进，并在 {when} 提醒：{task}"
                    ),
                    &format!(
                        "That is not a command. Save it on {name}?\n1 save it as a follow-up\n2 save it and remind me {when}: {task}"
                    ),
                );
                self.session.pending = Some(Pending::SaveNoteOrRemind {
                    customer_id: c.id,
                    text,
                    due_at,
                    task,
                });
                return Ok(answer);
            }
            self.session.pending = Some(Pending::SaveNote {
                customer_id: c.id,
                text,
            });
            return Ok(self.t(
                &format!("没看懂这条消息。要把它记为 {name} 的跟进吗？回复 1 保存。"),
                &format!("That is not a command. Save it as a follow-up on {name}? Reply 1."),
            ));
        }
        Ok(self.t(
            "没看懂这条消息。发送「帮助」查看命令，例如：记 @张伟 已报价",
            "That is not a command. Send `help` to see the commands, e.g. `note @name quoted`.",
        ))
    }
}

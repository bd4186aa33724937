//! The managers' daily summary: every department leader (and each `summary.extra_recipients`
//! member, for the whole org) gets one message a day for their team — per rep new customers,
//! follow-ups, reminders done and overdue, stage moves, wins and customers lost; team totals
//! against the previous day and the 7-day average; and the customers at risk. Exactly one per
//! recipient and date: the run record and the queued message share a transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Duration, NaiveDate};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use super::runs;
use crate::bot::command::Lang;
use crate::crm::customers;
use crate::crm::figures::{self, Figures};
use crate::crm::members::parse_list;
use crate::crm::risk::Risk;
use crate::db::begin_write;
use crate::db::entity::{customer, department, member, member_department};
use crate::notify;
use crate::services::Services;
use crate::texts::{self, date_start, split_lines};
use crate::wecom::api::MessageBody;

const DAY_MS: i64 = 86_400_000;
/// WeCom cuts markdown at 2048 bytes; longer summaries go out in parts.
const MAX_PART_BYTES: usize = 2000;
/// Reps listed one per line, the most active first (a leader of leaders has department lines).
const MAX_REP_LINES: usize = 30;
/// At-risk customers listed by name (the rest are counted).
const AT_RISK_LISTED: u64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{0} 不是部门负责人，也不在 summary.extra_recipients 中，没有日报可发")]
    NotRecipient(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Who gets a summary, and of whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub userid: String,
    /// The departments they lead, or empty for the whole org.
    pub departments: Vec<String>,
    /// The active members whose figures the summary shows.
    pub team: Vec<String>,
    /// The sub-departments directly under theirs, with their active members: a leader of
    /// leaders sees a line per department.
    pub units: Vec<(String, Vec<String>)>,
}

/// The org chart as stored by the org sync.
struct OrgChart {
    departments: Vec<department::Model>,
    links: Vec<member_department::Model>,
    active: BTreeSet<String>,
}

impl OrgChart {
    async fn load(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        Ok(Self {
            departments: department::Entity::find().all(db).await?,
            links: member_department::Entity::find().all(db).await?,
            active: member::Entity::find()
                .filter(member::Column::Active.eq(true))
                .select_only()
                .column(member::Column::Userid)
                .into_tuple::<String>()
                .all(db)
                .await?
                .into_iter()
                .collect(),
        })
    }

    fn name(&self, id: i64) -> String {
        self.departments
            .iter()
            .find(|d| d.id == id)
            .map_or_else(|| format!("#{id}"), |d| d.name.clone())
    }

    /// `heads` and every department below them.
    fn subtree(&self, heads: &BTreeSet<i64>) -> BTreeSet<i64> {
        crate::crm::members::subtree(&self.departments, heads.iter().copied())
    }

    fn members_of(&self, tree: &BTreeSet<i64>) -> Vec<String> {
        let members: BTreeSet<&String> = self
            .links
            .iter()
            .filter(|l| tree.contains(&l.department_id) && self.active.contains(&l.userid))
            .map(|l| &l.userid)
            .collect();
        members.into_iter().cloned().collect()
    }

    /// The departments directly under `heads` (but not themselves heads), with their members.
    fn units(&self, heads: &BTreeSet<i64>) -> Vec<(String, Vec<String>)> {
        let mut children: Vec<&department::Model> = self
            .departments
            .iter()
            .filter(|d| d.id != d.parent_id && heads.contains(&d.parent_id) && !heads.contains(&d.id))
            .collect();
        children.sort_by_key(|d| (d.sort_order, d.id));
        children
            .into_iter()
            .map(|d| (d.name.clone(), self.members_of(&self.subtree(&BTreeSet::from([d.id])))))
            .collect()
    }
}

/// Every active department leader, and the configured extra recipients (whole org).
pub async fn recipients(db: &impl ConnectionTrait, extra: &[String]) -> Result<Vec<Recipient>, DbErr> {
    let org = OrgChart::load(db).await?;
    let mut led: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for l in org.links.iter().filter(|l| l.is_leader) {
        led.entry(l.userid.clone()).or_default().insert(l.department_id);
    }
    for d in &org.departments {
        for leader in parse_list(&d.leaders) {
            led.entry(leader).or_default().insert(d.id);
        }
    }
    let mut out = Vec::new();
    let ids: BTreeSet<i64> = org.departments.iter().map(|d| d.id).collect();
    let roots: BTreeSet<i64> = org
        .departments
        .iter()
        .filter(|d| d.parent_id == d.id || !ids.contains(&d.parent_id))
        .map(|d| d.id)
        .collect();
    for userid in extra.iter().filter(|u| org.active.contains(*u)) {
        out.push(Recipient {
            userid: userid.clone(),
            departments: Vec::new(),
            team: org.active.iter().cloned().collect(),
            units: org.units(&roots),
        });
    }
    for (userid, heads) in led {
        if !org.active.contains(&userid) || extra.contains(&userid) {
            continue;
        }
        out.push(Recipient {
            departments: heads.iter().map(|d| org.name(*d)).collect(),
            team: org.members_of(&org.subtree(&heads)),
            units: org.units(&heads),
            userid,
        });
    }
    Ok(out)
}

/// The org's figures for a date, the day before, and the seven days before it — computed once
/// and shared by every recipient's summary.
pub struct OrgFigures {
    pub date: NaiveDate,
    pub day: HashMap<String, Figures>,
    pub previous: HashMap<String, Figures>,
    pub week: HashMap<String, Figures>,
    /// When the date's figures are taken (the end of the day, or now for today).
    pub as_of: i64,
}

/// The figures for `date`: of everyone (one pass shared by all recipients), or of `members`.
pub async fn org_figures(
    s: &Services,
    date: NaiveDate,
    now: i64,
    members: Option<&[String]>,
) -> Result<OrgFigures, DbErr> {
    let tz = s.tz();
    let start = date_start(date, tz);
    let end = date_start(date + Duration::days(1), tz);
    let previous_start = date_start(date - Duration::days(1), tz);
    let week_start = date_start(date - Duration::days(7), tz);
    let as_of = now.min(end);
    let won = won_stage(&crate::crm::stages::current(&s.db, &s.config).await?);
    let window = |from: i64, to: i64, at: i64| {
        let won = won.clone();
        async move {
            match members {
                Some(members) => figures::for_members(&s.db, members, from, to, at, &won).await,
                None => figures::for_everyone(&s.db, from, to, at, &won).await,
            }
        }
    };
    Ok(OrgFigures {
        date,
        day: window(start, end, as_of).await?,
        previous: window(previous_start, start, previous_start).await?,
        week: window(week_start, start, week_start).await?,
        as_of,
    })
}

fn won_stage(stages: &[String]) -> String {
    stages.get(stages.len().saturating_sub(2)).cloned().unwrap_or_default()
}

fn team_total(figures: &HashMap<String, Figures>, team: &[String]) -> Figures {
    let mut total = Figures::default();
    for m in team {
        if let Some(f) = figures.get(m) {
            total.add(f);
        }
    }
    total
}

/// A customer who needs the leader's attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RiskItem {
    pub customer: String,
    pub owner: String,
    /// Why: the reason recorded (they deleted the rep), or the days without a follow-up.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AtRisk {
    pub total: u64,
    pub listed: Vec<RiskItem>,
}

/// The team's customers at risk: flagged (they deleted their rep) or in an open stage without a
/// follow-up for `summary.at_risk_after_days`.
pub async fn at_risk(
    s: &Services,
    team: &[String],
    as_of: i64,
    names: &HashMap<String, String>,
) -> Result<AtRisk, DbErr> {
    if team.is_empty() {
        return Ok(AtRisk::default());
    }
    let owned = || customer::Entity::find().filter(customer::Column::OwnerUserid.is_in(team.iter().cloned()));
    let rule = Risk::current(&s.db, &s.config, as_of).await?;
    let flagged = owned().filter(Risk::flagged());
    let quiet = owned().filter(rule.quiet());
    let owner_name = |c: &customer::Model| {
        let id = c.owner_userid.clone().unwrap_or_default();
        names.get(&id).cloned().unwrap_or(id)
    };
    let mut risk = AtRisk {
        total: flagged.clone().count(&s.db).await? + quiet.clone().count(&s.db).await?,
        listed: Vec::new(),
    };
    for c in flagged
        .order_by_desc(customer::Column::AtRiskSince)
        .limit(AT_RISK_LISTED)
        .all(&s.db)
        .await?
    {
        risk.listed.push(RiskItem {
            customer: customers::display(&c),
            owner: owner_name(&c),
            reason: rule.reason(&c).unwrap_or_default(),
        });
    }
    let room = AT_RISK_LISTED.saturating_sub(risk.listed.len() as u64);
    if room > 0 {
        for c in quiet
            .order_by_asc(customer::Column::LastFollowUpAt)
            .order_by_asc(customer::Column::Id)
            .limit(room)
            .all(&s.db)
            .await?
        {
            risk.listed.push(RiskItem {
                customer: customers::display(&c),
                owner: owner_name(&c),
                reason: rule.reason(&c).unwrap_or_default(),
            });
        }
    }
    Ok(risk)
}

/// How the summary is written: markdown for the push, plain text for a chat reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
}

struct Writer {
    format: Format,
    lang: Lang,
    lines: Vec<String>,
}

impl Writer {
    fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.lang.en() { en } else { zh }
    }

    fn heading(&mut self, text: String) {
        self.lines.push(match self.format {
            Format::Markdown => format!("**{text}**"),
            Format::Text => text,
        });
    }

    fn item(&mut self, text: String) {
        self.lines.push(match self.format {
            Format::Markdown => format!("> {text}"),
            Format::Text => format!("· {text}"),
        });
    }
}

fn trend(today: u64, previous: u64, week: u64, lang: Lang) -> String {
    let avg = week as f64 / 7.0;
    if lang.en() {
        format!("{today} (prev. day {previous} · 7-day avg {avg:.1})")
    } else {
        format!("{today}（前一日 {previous} · 7日均 {avg:.1}）")
    }
}

fn member_line(name: &str, f: &Figures, lang: Lang) -> String {
    let labels: [(&str, &str, u64); 7] = [
        ("新客", "new", f.new_customers),
        ("跟进", "follow-ups", f.follow_ups),
        ("完成", "done", f.reminders_done),
        ("逾期", "overdue", f.overdue),
        ("推进", "moves", f.stage_moves),
        ("赢单", "wins", f.wins),
        ("流失", "lost", f.lost),
    ];
    let parts: Vec<String> = labels
        .iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(zh, en, n)| {
            if lang.en() {
                format!("{en} {n}")
            } else {
                format!("{zh} {n}")
            }
        })
        .collect();
    let sep = if lang.en() { ": " } else { "：" };
    if parts.is_empty() {
        return format!("{name}{sep}{}", if lang.en() { "no activity" } else { "无动态" });
    }
    format!("{name}{sep}{}", parts.join(" · "))
}

/// The summary for one recipient, as lines.
pub fn compose(
    recipient: &Recipient,
    org: &OrgFigures,
    risk: &AtRisk,
    names: &HashMap<String, String>,
    tz: chrono_tz::Tz,
    format: Format,
    lang: Lang,
) -> Vec<String> {
    let mut w = Writer {
        format,
        lang,
        lines: Vec::new(),
    };
    let day = texts::day(date_start(org.date, tz) + DAY_MS / 2, tz);
    let scope = if recipient.departments.is_empty() {
        w.t("全公司", "whole org").to_owned()
    } else {
        recipient.departments.join("、")
    };
    w.heading(if lang.en() {
        format!("📊 Daily summary · {} · {scope}", org.date)
    } else {
        format!("📊 销售日报 · {day} · {scope}")
    });
    let total = team_total(&org.day, &recipient.team);
    let previous = team_total(&org.previous, &recipient.team);
    let week = team_total(&org.week, &recipient.team);
    w.heading(w.t("团队合计", "Team totals").to_owned());
    let rows: [(&str, &str, u64, u64, u64); 6] = [
        (
            "新增客户",
            "New customers",
            total.new_customers,
            previous.new_customers,
            week.new_customers,
        ),
        (
            "记录跟进",
            "Follow-ups",
            total.follow_ups,
            previous.follow_ups,
            week.follow_ups,
        ),
        (
            "完成提醒",
            "Reminders done",
            total.reminders_done,
            previous.reminders_done,
            week.reminders_done,
        ),
        (
            "推进阶段",
            "Stage moves",
            total.stage_moves,
            previous.stage_moves,
            week.stage_moves,
        ),
        ("赢单", "Wins", total.wins, previous.wins, week.wins),
        ("流失客户", "Customers lost", total.lost, previous.lost, week.lost),
    ];
    for (zh, en, today, prev, wk) in rows {
        let label = w.t(zh, en).to_owned();
        w.item(format!("{label} {}", trend(today, prev, wk, lang)));
    }
    w.item(if lang.en() {
        format!("Overdue reminders {}", total.overdue)
    } else {
        format!("逾期提醒 {}", total.overdue)
    });

    let name_of = |u: &String| names.get(u).cloned().unwrap_or_else(|| u.clone());
    let mut active: Vec<(&String, &Figures)> = recipient
        .team
        .iter()
        .filter_map(|m| org.day.get(m).map(|f| (m, f)))
        .filter(|(_, f)| !f.is_quiet() || f.overdue > 0)
        .collect();
    active.sort_by(|a, b| {
        let score = |f: &Figures| {
            (
                f.wins,
                f.follow_ups + f.new_customers + f.reminders_done + f.stage_moves,
            )
        };
        score(b.1)
            .cmp(&score(a.1))
            .then_with(|| name_of(a.0).cmp(&name_of(b.0)))
    });
    if recipient.units.len() > 1 {
        w.heading(w.t("各部门", "Departments").to_owned());
        for (unit, members) in &recipient.units {
            w.item(member_line(unit, &team_total(&org.day, members), lang));
        }
    }
    if !active.is_empty() {
        w.heading(w.t("每人", "Per rep").to_owned());
        for (m, f) in active.iter().take(MAX_REP_LINES) {
            w.item(member_line(&name_of(m), f, lang));
        }
        let more = active.len().saturating_sub(MAX_REP_LINES);
        if more > 0 {
            w.item(if lang.en() {
                format!("… and {more} more with activity (see each department's summary)")
            } else {
                format!("…… 另有 {more} 人有动态（详见各部门日报）")
            });
        }
    }
    let busy: HashSet<&String> = active.iter().map(|(m, _)| *m).collect();
    let quiet: Vec<String> = recipient
        .team
        .iter()
        .filter(|m| !busy.contains(m))
        .map(name_of)
        .collect();
    if !quiet.is_empty() {
        let shown: Vec<&str> = quiet.iter().take(20).map(String::as_str).collect();
        let more = quiet.len() - shown.len();
        let list = shown.join("、");
        w.item(match (lang.en(), more) {
            (false, 0) => format!("无动态：{list}"),
            (false, n) => format!("无动态：{list} 等 {} 人", n + shown.len()),
            (true, 0) => format!("No activity: {list}"),
            (true, n) => format!("No activity: {list} and {n} more"),
        });
    }
    if risk.total > 0 {
        w.heading(if lang.en() {
            format!("⚠️ At risk ({})", risk.total)
        } else {
            format!("⚠️ 流失风险（{}）", risk.total)
        });
        for r in &risk.listed {
            w.item(format!("{} · {} · {}", r.customer, r.owner, r.reason));
        }
        let more = risk.total.saturating_sub(risk.listed.len() as u64);
        if more > 0 {
            w.item(if lang.en() {
                format!("… and {more} more")
            } else {
                format!("…… 另有 {more} 位")
            });
        }
    }
    w.lines
}

async fn member_names(db: &impl ConnectionTrait) -> Result<HashMap<String, String>, DbErr> {
    Ok(member::Entity::find()
        .select_only()
        .column(member::Column::Userid)
        .column(member::Column::Name)
        .into_tuple::<(String, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// One recipient's summary, ready to send: the parts of the message.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub userid: String,
    pub parts: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SendReport {
    pub date: String,
    pub sent: Vec<String>,
    pub already_sent: Vec<String>,
    /// The outbox messages this run queued, per recipient.
    #[serde(skip)]
    pub queued: Vec<(String, Vec<i64>)>,
}

/// The recipients for `date` (all, or only `only`).
async fn chosen(s: &Services, only: Option<&str>) -> Result<Vec<Recipient>, SummaryError> {
    let all = recipients(&s.db, &s.config.summary.extra_recipients).await?;
    match only {
        None => Ok(all),
        Some(userid) => {
            let one: Vec<Recipient> = all.into_iter().filter(|r| r.userid == userid).collect();
            if one.is_empty() {
                return Err(SummaryError::NotRecipient(userid.to_owned()));
            }
            Ok(one)
        }
    }
}

/// Writes the summaries of `date` without sending them (`summary send --dry-run`).
pub async fn render(
    s: &Services,
    date: NaiveDate,
    only: Option<&str>,
    now: i64,
) -> Result<Vec<Rendered>, SummaryError> {
    let recipients = chosen(s, only).await?;
    render_for(s, &recipients, date, now).await
}

async fn render_for(
    s: &Services,
    recipients: &[Recipient],
    date: NaiveDate,
    now: i64,
) -> Result<Vec<Rendered>, SummaryError> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let org = org_figures(s, date, now, None).await?;
    let names = member_names(&s.db).await?;
    let mut out = Vec::new();
    for r in recipients {
        let risk = at_risk(s, &r.team, org.as_of, &names).await?;
        let lines = compose(r, &org, &risk, &names, s.tz(), Format::Markdown, Lang::Zh);
        let mut parts = split_lines(&lines, MAX_PART_BYTES - 16);
        let n = parts.len();
        if n > 1 {
            for (i, part) in parts.iter_mut().enumerate() {
                part.push_str(&format!("\n（{}/{n}）", i + 1));
            }
        }
        out.push(Rendered {
            userid: r.userid.clone(),
            parts,
        });
    }
    Ok(out)
}

/// Sends the summaries of `date` to every recipient (or only `only`) who has not had theirs.
pub async fn send(s: &Services, date: NaiveDate, only: Option<&str>, now: i64) -> Result<SendReport, SummaryError> {
    let period = date.to_string();
    let mut report = SendReport {
        date: period.clone(),
        ..Default::default()
    };
    let mut pending = Vec::new();
    for r in chosen(s, only).await? {
        if runs::exists(&s.db, "summary", &r.userid, &period).await? {
            report.already_sent.push(r.userid);
        } else {
            pending.push(r);
        }
    }
    for rendered in render_for(s, &pending, date, now).await? {
        let txn = begin_write(&s.db).await?;
        if runs::try_start(&txn, "summary", &rendered.userid, &period).await? {
            let mut queued = Vec::new();
            for (i, part) in rendered.parts.iter().enumerate() {
                let key = format!("summary:{}:{period}:{}", rendered.userid, i + 1);
                let body = MessageBody::markdown(part.clone());
                queued.extend(notify::enqueue(&txn, &key, &rendered.userid, &body).await?);
            }
            let detail = format!("{} part(s)", rendered.parts.len());
            runs::finish(&txn, "summary", &rendered.userid, &period, "done", &detail).await?;
            txn.commit().await?;
            report.queued.push((rendered.userid.clone(), queued));
            report.sent.push(rendered.userid);
        } else {
            txn.rollback().await?;
            report.already_sent.push(rendered.userid);
        }
    }
    s.notifier.wake();
    Ok(report)
}

/// `日报` from a leader (or an extra recipient): their team's summary for today, as text. `None`
/// for everyone else, who get their own figures.
pub async fn for_chat(s: &Services, userid: &str, lang: Lang, now: i64) -> Result<Option<String>, DbErr> {
    let Some(recipient) = recipients(&s.db, &s.config.summary.extra_recipients)
        .await?
        .into_iter()
        .find(|r| r.userid == userid)
    else {
        return Ok(None);
    };
    let date = texts::local_date(now, s.tz());
    let org = org_figures(s, date, now, Some(&recipient.team)).await?;
    let names = member_names(&s.db).await?;
    let risk = at_risk(s, &recipient.team, org.as_of, &names).await?;
    Ok(Some(
        compose(&recipient, &org, &risk, &names, s.tz(), Format::Text, lang).join("\n"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lines_show_only_what_happened() {
        let f = Figures {
            new_customers: 2,
            follow_ups: 5,
            wins: 1,
            ..Default::default()
        };
        assert_eq!(member_line("李雷", &f, Lang::Zh), "李雷：新客 2 · 跟进 5 · 赢单 1");
        assert_eq!(member_line("Li", &f, Lang::En), "Li: new 2 · follow-ups 5 · wins 1");
    }

    #[test]
    fn a_large_team_lists_the_most_active_reps_and_department_lines() {
        let team: Vec<String> = (0..45).map(|i| format!("r{i:02}")).collect();
        let day: HashMap<String, Figures> = team
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let f = Figures {
                    follow_ups: if i < 40 { i as u64 + 1 } else { 0 },
                    ..Default::default()
                };
                (m.clone(), f)
            })
            .collect();
        let recipient = Recipient {
            userid: "boss".into(),
            departments: vec!["公司".into()],
            units: vec![
                ("一部".into(), team[..20].to_vec()),
                ("二部".into(), team[20..].to_vec()),
            ],
            team,
        };
        let org = OrgFigures {
            date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            day,
            previous: HashMap::new(),
            week: HashMap::new(),
            as_of: 0,
        };
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let lines = compose(
            &recipient,
            &org,
            &AtRisk::default(),
            &HashMap::new(),
            tz,
            Format::Markdown,
            Lang::Zh,
        );
        let text = lines.join("\n");
        assert!(
            text.contains("**各部门**\n> 一部：跟进 210\n> 二部：跟进 610\n"),
            "{text}"
        );
        let reps: Vec<&String> = lines.iter().filter(|l| l.starts_with("> r")).collect();
        assert_eq!(reps.len(), MAX_REP_LINES);
        assert_eq!(reps[0], "> r39：跟进 40", "the most active first");
        assert!(text.contains("> …… 另有 10 人有动态（详见各部门日报）"), "{text}");
        assert!(text.contains("> 无动态：r40、r41、r42、r43、r44"), "{text}");
    }

    #[test]
    fn trends_compare_with_the_previous_day_and_the_week() {
        assert_eq!(trend(5, 3, 29, Lang::Zh), "5（前一日 3 · 7日均 4.1）");
    }
}

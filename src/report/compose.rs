//! The summary's text: markdown for the evening push (in parts when long), plain text for a chat
//! reply, in the reader's language.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::DbErr;
use serde::Serialize;

use super::figures::{AtRisk, DAY_MS, OrgFigures, at_risk, org_figures, team_total};
use super::recipients::{Recipient, SummaryError, chosen, member_names, recipients};
use crate::crm::figures::Figures;
use crate::services::Services;
use crate::texts::{self, Lang, date_start, split_lines};

/// WeCom cuts markdown at 2048 bytes; longer summaries go out in parts.
const MAX_PART_BYTES: usize = 2000;
/// Reps listed one per line, the most active first (a leader of leaders has department lines).
const MAX_REP_LINES: usize = 30;

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
        self.lines.push(heading_line(&text, self.format == Format::Markdown));
    }

    fn item(&mut self, text: String) {
        self.lines.push(item_line(&text, self.format == Format::Markdown));
    }
}

/// A section heading of the summary: bold in markdown, plain in a chat reply.
pub(super) fn heading_line(text: &str, markdown: bool) -> String {
    if markdown {
        format!("**{text}**")
    } else {
        text.to_owned()
    }
}

/// A line of a section: quoted in markdown, a bullet in a chat reply.
pub(super) fn item_line(text: &str, markdown: bool) -> String {
    if markdown {
        format!("> {text}")
    } else {
        format!("· {text}")
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

/// One recipient's summary, ready to send: the parts of the message.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub userid: String,
    pub parts: Vec<String>,
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

pub async fn render_for(
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
        let mut lines = compose(r, &org, &risk, &names, s.tz(), Format::Markdown, Lang::Zh);
        lines.extend(super::pipeline::lines(s, r, date, true, Lang::Zh).await?);
        lines.extend(super::segments::lines(s, r, date, true, &names, Lang::Zh).await?);
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
    let mut lines = compose(&recipient, &org, &risk, &names, s.tz(), Format::Text, lang);
    lines.extend(super::pipeline::lines(s, &recipient, date, false, lang).await?);
    lines.extend(super::segments::lines(s, &recipient, date, false, &names, lang).await?);
    Ok(Some(lines.join("\n")))
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

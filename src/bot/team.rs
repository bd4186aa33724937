//! A leader's questions about their team: `团队待办` / `team todo`, `谁没跟进` / `who is idle`,
//! `<成员名> 今天` / `<member> today`.

use sea_orm::DbErr;

use super::{Ctx, replies};
use crate::crm::risk::Risk;
use crate::crm::{customers, figures, team};
use crate::texts::{preview, start_of_day};

/// Overdue reminders listed at most.
const SHOWN: u64 = 30;
/// Customers going cold listed at most.
const COLD_SHOWN: u64 = 10;

impl Ctx<'_> {
    fn not_a_leader(&self) -> String {
        self.t(
            "这是给部门负责人的命令：你还没有带领的部门。",
            "This is for department leaders: you lead no department.",
        )
    }

    pub(super) async fn team_todo(&mut self) -> Result<String, DbErr> {
        let members = team::team_of(self.db, self.me).await?;
        if members.is_empty() {
            return Ok(self.not_a_leader());
        }
        let overdue = team::overdue(self.db, &members, self.now, SHOWN).await?;
        if overdue.is_empty() {
            return Ok(self.t("🎉 团队没有逾期的提醒。", "🎉 Nothing overdue in the team."));
        }
        let names = team::names(self.db, &members).await?;
        let ids: Vec<i64> = overdue.iter().filter_map(|r| r.customer_id).collect();
        let customers = team::customer_names(self.db, ids).await?;
        let mut lines = vec![self.t(
            &format!("⏰ 团队逾期提醒（{}）", overdue.len()),
            &format!("⏰ The team's overdue reminders ({})", overdue.len()),
        )];
        for (i, r) in overdue.iter().enumerate() {
            let who = names
                .get(&r.owner_userid)
                .cloned()
                .unwrap_or_else(|| r.owner_userid.clone());
            let on = r
                .customer_id
                .and_then(|id| customers.get(&id))
                .map(|n| format!(" · {n}"))
                .unwrap_or_default();
            let late = replies::overdue(r.due_at, self.now, self.lang);
            lines.push(format!("{}. {who} · {late}{on} · {}", i + 1, preview(&r.text, 40)));
        }
        Ok(lines.join("\n"))
    }

    pub(super) async fn idle(&mut self) -> Result<String, DbErr> {
        let members = team::team_of(self.db, self.me).await?;
        if members.is_empty() {
            return Ok(self.not_a_leader());
        }
        let today = start_of_day(self.now, self.tz());
        let idle = team::idle(self.db, &members, today).await?;
        let names = team::names(self.db, &members).await?;
        let risk = Risk::current(self.db, &self.s.config, self.now).await?;
        let cold = team::going_cold(self.db, &members, &risk, COLD_SHOWN).await?;
        let mut lines = Vec::new();
        if idle.is_empty() {
            lines.push(self.t("✅ 今天每个人都记了跟进。", "✅ Everyone logged a follow-up today."));
        } else {
            let who: Vec<String> = idle
                .iter()
                .map(|u| names.get(u).cloned().unwrap_or_else(|| u.clone()))
                .collect();
            lines.push(self.t(
                &format!("😴 今天还没记跟进（{}）：{}", who.len(), who.join("、")),
                &format!("😴 No follow-up today ({}): {}", who.len(), who.join(", ")),
            ));
        }
        if !cold.is_empty() {
            lines.push(self.t("🧊 快要变冷的客户：", "🧊 Customers going cold:"));
            for (i, c) in cold.iter().enumerate() {
                let owner = c.owner_userid.as_deref().unwrap_or_default();
                let owner = names.get(owner).cloned().unwrap_or_else(|| owner.to_owned());
                let why = risk.reason(c).unwrap_or_default();
                lines.push(format!("{}. {} · {owner} · {why}", i + 1, customers::display(c)));
            }
        }
        lines.push(self.t(
            "发送「<成员名> 今天」看一个人的今天。",
            "Send `<member> today` for one rep's day.",
        ));
        Ok(lines.join("\n"))
    }

    /// `<成员名> 今天` / `<member> today` from a leader about a member of their team; `None` when
    /// the text is not that question.
    pub(super) async fn member_day(&mut self, text: &str) -> Result<Option<String>, DbErr> {
        let trimmed = text.trim();
        let lower = trimmed.to_lowercase();
        let head = if let Some(head) = trimmed.strip_suffix("今天") {
            head
        } else if lower.ends_with("today") && trimmed.is_char_boundary(trimmed.len() - 5) {
            &trimmed[..trimmed.len() - 5]
        } else {
            return Ok(None);
        };
        let head = head.trim();
        if head.is_empty() || head.chars().count() > 20 {
            return Ok(None);
        }
        let members = team::team_of(self.db, self.me).await?;
        if members.is_empty() {
            return Ok(None);
        }
        let names = team::names(self.db, &members).await?;
        let Some((userid, name)) = names
            .iter()
            .find(|(userid, name)| name.as_str() == head || userid.eq_ignore_ascii_case(head))
        else {
            return Ok(None);
        };
        let tz = self.tz();
        let today = start_of_day(self.now, tz);
        let stages = crate::crm::stages::current(self.db, &self.s.config).await?;
        let won = stages.get(stages.len().saturating_sub(2)).cloned().unwrap_or_default();
        let one = vec![userid.clone()];
        let f = figures::for_members(self.db, &one, today, self.now + 1, self.now, &won).await?;
        let f = f.get(userid).cloned().unwrap_or_default();
        let mut lines = vec![self.t(&format!("👤 {name} 今天"), &format!("👤 {name} today"))];
        let summary = replies::summary(&f, self.now, tz, self.lang);
        lines.extend(summary.lines().skip(1).map(str::to_owned));
        let notes = team::follow_ups_of(self.db, userid, today, 5).await?;
        if !notes.is_empty() {
            lines.push(self.t("最近跟进：", "Latest follow-ups:"));
            let ids: Vec<i64> = notes.iter().map(|n| n.customer_id).collect();
            let customers = team::customer_names(self.db, ids).await?;
            for n in &notes {
                let on = customers.get(&n.customer_id).cloned().unwrap_or_default();
                let at = replies::when_near(n.created_at, self.now, tz, self.lang);
                lines.push(format!("· {at} {on}：{}", preview(&n.content, 40)));
            }
        }
        Ok(Some(lines.join("\n")))
    }
}

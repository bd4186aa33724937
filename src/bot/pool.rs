//! `公海` / `领取` / `退回` / `评分`: the lead pool and the customer score, in chat.

use sea_orm::DbErr;

use super::command::Verb;
use super::session::List;
use super::{Ctx, Resolved, Target, replies};
use crate::crm::audit::Actor;
use crate::crm::pool::{self, ClaimError, DAY_MS};
use crate::crm::{channels, members, score, stages};
use crate::db::entity::lead_assignment::LeadAction;

/// Leads listed by `公海`.
const POOL_SHOWN: u64 = 10;

impl Ctx<'_> {
    pub(super) async fn pool(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let keyword = match target {
            Some(Target::Query(q)) => format!("{q} {args}"),
            _ => args,
        };
        let keyword = keyword.trim();
        let leads = pool::list(self.db, keyword, POOL_SHOWN).await?;
        if leads.is_empty() {
            return Ok(if keyword.is_empty() {
                self.t("公海里暂时没有线索。", "The pool is empty.")
            } else {
                self.t(
                    &format!("公海里没有「{keyword}」相关的线索。"),
                    &format!("No lead in the pool matches “{keyword}”."),
                )
            });
        }
        let total = pool::size(self.db).await?;
        let mut lines = vec![self.t(
            &format!("🌊 公海线索（共 {total} 条）："),
            &format!("🌊 Leads in the pool ({total} in all):"),
        )];
        for (i, lead) in leads.iter().enumerate() {
            let channel = channels::find_by_state(self.db, lead.first_state.as_deref().unwrap_or_default()).await?;
            let source = channels::source_name(channel.as_ref(), lead.first_state.as_deref());
            let days = (self.now - lead.pooled_at.unwrap_or(self.now)).max(0) / DAY_MS;
            let reason = lead.pool_reason.clone().unwrap_or_default();
            let mut line = format!("{}. {}", i + 1, replies::customer_name(lead));
            if !source.is_empty() {
                line.push_str(&format!(" · {source}"));
            }
            line.push_str(&if self.lang.en() {
                format!(" · {days} d in the pool")
            } else {
                format!(" · 入池 {days} 天")
            });
            if !reason.is_empty() {
                line.push_str(&if self.lang.en() {
                    format!(" ({reason})")
                } else {
                    format!("（{reason}）")
                });
            }
            lines.push(line);
        }
        lines.push(self.t("回复「领取 序号」领取。", "Reply `claim <n>` to take one."));
        self.session.list = Some(List::Pool(leads.iter().map(|c| c.id).collect()));
        Ok(lines.join("\n"))
    }

    pub(super) async fn claim(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let text = match target {
            Some(Target::Query(q)) => q,
            _ => args,
        };
        let Ok(n) = text.trim().parse::<usize>() else {
            return Ok(self.usage(Verb::Claim));
        };
        let Some(List::Pool(ids)) = &self.session.list else {
            return Ok(self.t(
                "先发送「公海」查看线索，再「领取 序号」。",
                "Send `pool` first, then `claim <n>`.",
            ));
        };
        let Some(id) = n.checked_sub(1).and_then(|i| ids.get(i)).copied() else {
            return Ok(self.t(
                &format!("公海列表里没有第 {n} 条。"),
                &format!("There is no lead {n} in the pool list."),
            ));
        };
        let rules = pool::rules(self.db, &self.s.config).await?.pool;
        let stages = stages::current(self.db, &self.s.config).await?;
        match pool::claim(self.db, &rules, &stages, self.me, id, (self.now, self.tz())).await {
            Ok(lead) => {
                self.session.current = Some(lead.id);
                let name = replies::customer_name(&lead);
                Ok(self.t(
                    &format!(
                        "✅ 已领取 {name}，现在由你负责。\n已设为当前客户：「记 …」「提醒 …」都记在这位客户名下。"
                    ),
                    &format!(
                        "✅ {name} is yours now.\nThey are your current customer: `note …` and `remind …` go to them."
                    ),
                ))
            }
            Err(ClaimError::Taken { owner }) => {
                let who = match owner {
                    Some(owner) => members::display_name(self.db, &owner).await?,
                    None => String::new(),
                };
                Ok(if who.is_empty() {
                    self.t("这条线索已不在公海里。", "That lead is no longer in the pool.")
                } else {
                    self.t(
                        &format!("慢了一步：这条线索已被 {who} 领取。"),
                        &format!("Too late: {who} has claimed that lead."),
                    )
                })
            }
            Err(ClaimError::Cooldown { until }) => {
                let when = replies::when(until, self.tz(), self.lang);
                Ok(self.t(
                    &format!("这条线索是你退回的，{when} 之后才能再领取。"),
                    &format!("You gave this lead back; you may claim it again from {when}."),
                ))
            }
            Err(ClaimError::DailyCap { cap }) => Ok(self.t(
                &format!("今天已领取 {cap} 条，达到每日上限，明天再来。"),
                &format!("You have claimed {cap} leads today, the daily cap; try again tomorrow."),
            )),
            Err(ClaimError::HoldingCap { held }) => Ok(self.t(
                &format!("你手上已有 {held} 条进行中的线索，达到上限；先推进或退回一些再领取。"),
                &format!("You hold {held} open leads, the cap; move some on or release some first."),
            )),
            Err(ClaimError::Inactive) => {
                Ok(self.t("只有在职成员可以领取线索。", "Only active members may claim leads."))
            }
            Err(ClaimError::Db(e)) => Err(e),
        }
    }

    pub(super) async fn release(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let (c, reason) = match self.resolve(Verb::Release, target, args, true).await? {
            Resolved::Customer(c, rest) => (c, rest.trim().to_owned()),
            Resolved::Answer(answer) => return Ok(answer),
        };
        let name = replies::customer_name(&c);
        if c.owner_userid.as_deref() != Some(self.me) {
            return Ok(self.t(
                &format!("{name} 不是由你负责的，不能退回。"),
                &format!("You are not {name}'s owner; only the owner may release them."),
            ));
        }
        if reason.is_empty() {
            return Ok(self.t(
                &format!("请写明退回 {name} 的原因，例如：退回 @{} 联系不上", c.name),
                &format!("Say why, e.g. `release @{} unreachable`.", c.name),
            ));
        }
        let actor = Actor::Member(self.me.to_owned());
        if !pool::to_pool(
            self.db,
            &actor,
            &c,
            Some(self.me),
            LeadAction::Returned,
            &reason,
            self.now,
        )
        .await?
        {
            return Ok(self.t(
                "这位客户刚被他人处理，未退回。",
                "Someone moved this customer meanwhile; nothing changed.",
            ));
        }
        if self.session.current == Some(c.id) {
            self.session.current = None;
        }
        let days = pool::rules(self.db, &self.s.config).await?.pool.reclaim_cooldown_days;
        Ok(self.t(
            &format!("↩️ 已把 {name} 退回公海（{reason}）。{days} 天内你不能再领取；发「撤销」可撤回。"),
            &format!("↩️ {name} is back in the pool ({reason}). You may not claim them for {days} days; `undo` takes it back."),
        ))
    }

    pub(super) async fn score(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        let target = target.or_else(|| (!args.is_empty()).then(|| Target::Query(args.clone())));
        let c = match self.resolve(Verb::Score, target, String::new(), false).await? {
            Resolved::Customer(c, _) => c,
            Resolved::Answer(answer) => return Ok(answer),
        };
        let stages = stages::current(self.db, &self.s.config).await?;
        let cfg = &self.s.config.scoring;
        let scored = score::refresh_one(self.db, cfg, &stages, &c, self.now).await?;
        let en = self.lang.en();
        let mut lines = vec![self.t(
            &format!(
                "📈 {} 评分 {}（{}）",
                replies::customer_name(&c),
                scored.total,
                scored.segment.label(false)
            ),
            &format!(
                "📈 {} scores {} ({})",
                replies::customer_name(&c),
                scored.total,
                scored.segment.label(true)
            ),
        )];
        for f in &scored.factors {
            lines.push(format!(
                "· {} {}/{}：{}",
                score::factor_label(f.key, en),
                f.points,
                f.max,
                f.detail
            ));
        }
        lines.push(self.t(
            &format!(
                "分层：{}分以上重要，{}分以上主要；{}分以上但 {} 天没跟进算风险。",
                cfg.important_from, cfg.main_from, cfg.main_from, cfg.at_risk_after_days
            ),
            &format!(
                "Segments: important from {}, main from {}; at risk: {} or more without a follow-up for {} days.",
                cfg.important_from, cfg.main_from, cfg.main_from, cfg.at_risk_after_days
            ),
        ));
        Ok(lines.join("\n"))
    }
}

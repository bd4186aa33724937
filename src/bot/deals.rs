//! Deals in chat: `商机 [@客户] <金额> [<成交时间>] [标题]` makes one, `商机` lists mine, `阶段` moves
//! the customer's only open deal (or asks which), `赢单 [@客户] [金额]` and `输单 [@客户] <原因>` close
//! one. An amount or a date that is not understood is said, never guessed.

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, EntityTrait};
use serde::{Deserialize, Serialize};

use super::command::Verb;
use super::session::Pending;
use super::{Ctx, Resolved, Target, replies, time};
use crate::crm::deals as fields;
use crate::crm::forecast;
use crate::crm::money::{self, Amount};
use crate::crm::pipeline::{self, NewDeal, StageSet};
use crate::crm::{customers, stages as crm_stages};
use crate::db::entity::customer;
use crate::db::entity::deal::{self, DealStatus};
use crate::report::pipeline as report_pipeline;

/// What to do with the deal a member picks from a numbered list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DealAction {
    Stage(String),
    /// Won, with the final amount (fen) when given.
    Win(Option<i64>),
    Lose(String),
}

impl Ctx<'_> {
    async fn stages(&self) -> Result<Vec<String>, DbErr> {
        crm_stages::current(self.db, &self.s.config).await
    }

    /// How a deal reads in a list: title, amount, stage (probability), expected close.
    async fn deal_line(&self, d: &deal::Model, stages: &[String]) -> String {
        let amount = d
            .amount_fen
            .map_or_else(|| self.t("金额未定", "amount unknown"), |f| Amount(f).short());
        let p = crm_stages::deal_probability(&self.s.config, stages, &d.stage, d.probability);
        let close = d
            .expected_close
            .as_deref()
            .map(|c| self.t(&format!(" · 预计 {c}"), &format!(" · close {c}")))
            .unwrap_or_default();
        format!("{} · {amount} · {}（{p}%）{close}", d.title, d.stage)
    }

    /// `商机`: with nothing after it, my open deals; else a new deal on the customer.
    pub(super) async fn deal(&mut self, target: Option<Target>, args: String) -> Result<String, DbErr> {
        if target.is_none() && args.trim().is_empty() {
            return self.my_deals().await;
        }
        let (c, rest) = match self.resolve(Verb::Deal, target, args, true).await? {
            Resolved::Customer(c, rest) => (c, rest),
            Resolved::Answer(answer) => return Ok(answer),
        };
        let (amount, rest) = match money::parse(&rest) {
            Ok((amount, rest)) => (amount, rest.to_owned()),
            Err(e) => return Ok(if self.lang.en() { e.message_en() } else { e.message_zh() }),
        };
        let now = DateTime::<Utc>::from_timestamp_millis(self.now)
            .unwrap_or_default()
            .with_timezone(&self.tz());
        let (close, title) = match time::parse(&rest, now, self.s.config.bot.default_hour) {
            Ok(parsed) => (Some(parsed.at.date_naive()), parsed.rest),
            Err(time::TimeError::NotFound) => (None, rest),
            Err(e) => return Ok(if self.lang.en() { e.message_en() } else { e.message_zh() }),
        };
        let title = if title.trim().is_empty() {
            customers::display(&c)
        } else {
            title.trim().chars().take(60).collect()
        };
        let stages = self.stages().await?;
        let new = NewDeal {
            customer_id: c.id,
            owner: self.me.to_owned(),
            title,
            amount: Some(amount),
            expected_close: close,
            stage: None,
        };
        let made = pipeline::create(self.db, &stages, new, &self.actor(), self.now).await?;
        self.session.current = Some(c.id);
        let line = self.deal_line(&made, &stages).await;
        let name = replies::customer_name(&c);
        Ok(self.t(
            &format!("💼 商机已建：{line} · {name}"),
            &format!("💼 Deal created: {line} · {name}"),
        ))
    }

    async fn my_deals(&mut self) -> Result<String, DbErr> {
        let deals = pipeline::open_of_owner(self.db, self.me).await?;
        if deals.is_empty() {
            return Ok(self.t(
                "你还没有进行中的商机。新建：商机 @客户 50万 12月31日 二期项目",
                "You have no open deals. New one: deal @customer 500k dec 31 phase two",
            ));
        }
        let stages = self.stages().await?;
        let total: i64 = deals.iter().filter_map(|d| d.amount_fen).sum();
        let mut lines = vec![self.t(
            &format!("💼 进行中的商机（{}）· 合计 {}", deals.len(), Amount(total).short()),
            &format!("💼 Open deals ({}) · total {}", deals.len(), Amount(total).short()),
        )];
        for (i, d) in deals.iter().take(30).enumerate() {
            let who = customer::Entity::find_by_id(d.customer_id)
                .one(self.db)
                .await?
                .map(|c| format!(" · {}", customers::display(&c)))
                .unwrap_or_default();
            lines.push(format!("{}. {}{who}", i + 1, self.deal_line(d, &stages).await));
        }
        if deals.len() > 30 {
            lines.push(self.t(
                &format!("……还有 {} 个", deals.len() - 30),
                &format!("… and {} more", deals.len() - 30),
            ));
        }
        Ok(lines.join("\n"))
    }

    /// `阶段 X` on a customer: its only open deal moves; none: a deal is made in that stage;
    /// several: which one is asked.
    pub(super) async fn deal_stage(&mut self, c: &customer::Model, stage: &str) -> Result<String, DbErr> {
        let stages = self.stages().await?;
        let name = replies::customer_name(c);
        let open: Vec<deal::Model> = pipeline::of_customer(self.db, c.id)
            .await?
            .into_iter()
            .filter(|d| d.status == DealStatus::Open)
            .collect();
        if open.len() <= 1 && c.stage.as_deref() == Some(stage) {
            return Ok(self.t(
                &format!("{name} 已经在「{stage}」阶段。"),
                &format!("{name} is already at “{stage}”."),
            ));
        }
        let from = c.stage.clone().unwrap_or_else(|| self.t("未设置", "none"));
        let set = pipeline::set_customer_stage(self.db, &stages, c, stage, &self.actor(), self.me, self.now).await?;
        match set {
            StageSet::Several(deals) => {
                return Ok(self.ask_which(deals, DealAction::Stage(stage.to_owned()), c).await);
            }
            StageSet::Created(deal) | StageSet::Moved { deal, .. } => {
                report_pipeline::deal_won(self.db, &deal).await?;
            }
        }
        let party = if fields::is_won(&stages, stage) { " 🎉" } else { "" };
        Ok(self.t(
            &format!("📈 阶段：{from} → {stage} · {name}{party}"),
            &format!("📈 Stage: {from} → {stage} · {name}{party}"),
        ))
    }

    /// `赢单 [@客户] [金额]` / `输单 [@客户] <原因>`.
    pub(super) async fn close_deal(
        &mut self,
        verb: Verb,
        target: Option<Target>,
        args: String,
    ) -> Result<String, DbErr> {
        let (c, rest) = match self.resolve(verb, target, args, true).await? {
            Resolved::Customer(c, rest) => (c, rest.trim().to_owned()),
            Resolved::Answer(answer) => return Ok(answer),
        };
        let action = if verb == Verb::Win {
            if rest.is_empty() {
                DealAction::Win(None)
            } else {
                match money::parse(&rest) {
                    Ok((amount, _)) => DealAction::Win(Some(amount.fen())),
                    Err(e) => return Ok(if self.lang.en() { e.message_en() } else { e.message_zh() }),
                }
            }
        } else {
            if rest.is_empty() {
                return Ok(self.usage(Verb::Lose));
            }
            DealAction::Lose(rest.chars().take(200).collect())
        };
        let open: Vec<deal::Model> = pipeline::of_customer(self.db, c.id)
            .await?
            .into_iter()
            .filter(|d| d.status == DealStatus::Open)
            .collect();
        match open.as_slice() {
            [] => Ok(self.t(
                &format!(
                    "{} 没有进行中的商机。先新建：商机 @{} 50万",
                    replies::customer_name(&c),
                    c.name
                ),
                &format!(
                    "{} has no open deal. Create one: deal @{} 500k",
                    replies::customer_name(&c),
                    c.name
                ),
            )),
            [one] => {
                let one = one.clone();
                self.apply(&one, &action).await
            }
            _ => Ok(self.ask_which(open, action, &c).await),
        }
    }

    /// Several open deals: they are listed, and the next message (a number) picks one.
    async fn ask_which(&mut self, deals: Vec<deal::Model>, action: DealAction, c: &customer::Model) -> String {
        let stages = self.stages().await.unwrap_or_default();
        let mut lines = vec![self.t(
            &format!(
                "{} 有 {} 个进行中的商机，是哪个？",
                replies::customer_name(c),
                deals.len()
            ),
            &format!(
                "{} has {} open deals. Which one?",
                replies::customer_name(c),
                deals.len()
            ),
        )];
        for (i, d) in deals.iter().enumerate() {
            lines.push(format!("{}. {}", i + 1, self.deal_line(d, &stages).await));
        }
        lines.push(self.t("回复序号。", "Reply with its number."));
        self.session.pending = Some(Pending::ChooseDeal {
            deals: deals.iter().map(|d| d.id).collect(),
            action,
        });
        lines.join("\n")
    }

    /// The answer to "which deal?": the action on the deal picked.
    pub(super) async fn chosen_deal(&mut self, deals: Vec<i64>, action: DealAction, n: usize) -> Result<String, DbErr> {
        let Some(&id) = n.checked_sub(1).and_then(|i| deals.get(i)) else {
            let len = deals.len();
            self.session.pending = Some(Pending::ChooseDeal { deals, action });
            return Ok(self.t(
                &format!("请回复 1 到 {len} 之间的序号。"),
                &format!("Please reply with a number from 1 to {len}."),
            ));
        };
        let Some(d) = deal::Entity::find_by_id(id).one(self.db).await? else {
            return Ok(self.t("这个商机已不存在。", "That deal no longer exists."));
        };
        // Still one I may change, and still open.
        let mine = customer::Entity::find_by_id(d.customer_id).one(self.db).await?;
        let allowed = match &mine {
            Some(c) => customers::accessible(self.db, c, &[self.me.to_owned()]).await?,
            None => false,
        };
        if !allowed || d.status != DealStatus::Open {
            return Ok(self.t(
                "这个商机已经关闭，或不再由你跟进。",
                "That deal is closed, or no longer yours to change.",
            ));
        }
        self.apply(&d, &action).await
    }

    async fn apply(&mut self, d: &deal::Model, action: &DealAction) -> Result<String, DbErr> {
        let stages = self.stages().await?;
        let actor = self.actor();
        let (zh, en) = match action {
            DealAction::Stage(stage) => {
                let from = d.stage.clone();
                let moved = pipeline::move_stage(self.db, &stages, d, stage, &actor, self.now).await?;
                if d.status != DealStatus::Won {
                    report_pipeline::deal_won(self.db, &moved).await?;
                }
                let party = if fields::is_won(&stages, stage) { " 🎉" } else { "" };
                (
                    format!("📈 商机「{}」：{from} → {stage}{party}", d.title),
                    format!("📈 Deal “{}”: {from} → {stage}{party}", d.title),
                )
            }
            DealAction::Win(amount) => {
                let won = pipeline::win(self.db, &stages, d, amount.map(Amount), &actor, self.now).await?;
                report_pipeline::deal_won(self.db, &won).await?;
                let amount = won
                    .amount_fen
                    .map_or_else(|| self.t("金额未定", "amount unknown"), |f| Amount(f).short());
                (
                    format!("🎉 赢单：{} · {amount}", d.title),
                    format!("🎉 Won: {} · {amount}", d.title),
                )
            }
            DealAction::Lose(reason) => {
                pipeline::lose(self.db, &stages, d, reason, &actor, self.now).await?;
                (
                    format!("📉 输单：{} · 原因：{reason}", d.title),
                    format!("📉 Lost: {} · reason: {reason}", d.title),
                )
            }
        };
        self.session.current = Some(d.customer_id);
        Ok(self.t(&zh, &en))
    }

    /// `预测`: my pipeline by stage, the weighted forecast for this month and next against my
    /// target, and what closed this month.
    pub(super) async fn forecast(&mut self) -> Result<String, DbErr> {
        let tz = self.tz();
        let today = crate::texts::local_date(self.now, tz);
        let months = [
            forecast::month_key(today),
            forecast::month_key(today + chrono::Months::new(1)),
        ];
        let scope = forecast::Scope::Members(vec![self.me.to_owned()]);
        let f = forecast::forecast(self.db, &self.s.config, &scope, &months, Some(("member", self.me)), tz).await?;
        let en = self.lang.en();
        let month_name = |key: &str| -> String {
            let m = forecast::month_number(key);
            if en {
                [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                ]
                .get(m.saturating_sub(1) as usize)
                .map_or_else(|| key.to_owned(), |s| (*s).to_owned())
            } else {
                format!("{m}月")
            }
        };
        if f.open_deals == 0 && f.closed.won_deals == 0 && f.closed.lost_deals == 0 {
            return Ok(self.t(
                "还没有商机，无从预测。新建：商机 @客户 50万 12月31日",
                "No deals to forecast yet. New one: deal @customer 500k dec 31",
            ));
        }
        let mut lines = vec![self.t(
            &format!(
                "📈 我的商机：{} 个进行中 · {}",
                f.open_deals,
                Amount(f.open_amount_fen).short()
            ),
            &format!(
                "📈 My pipeline: {} open · {}",
                f.open_deals,
                Amount(f.open_amount_fen).short()
            ),
        )];
        for s in &f.pipeline {
            let unpriced = match (s.unpriced, en) {
                (0, _) => String::new(),
                (n, false) => format!("（{n} 个金额未定）"),
                (n, true) => format!(" ({n} without amount)"),
            };
            lines.push(format!(
                "· {}（{}%）{} · {}{unpriced}",
                s.stage,
                s.probability,
                if en {
                    format!("{} deals", s.deals)
                } else {
                    format!("{} 个", s.deals)
                },
                Amount(s.amount_fen).short()
            ));
        }
        let weighted: Vec<String> = f
            .months
            .iter()
            .map(|m| format!("{} {}", month_name(&m.month), Amount(m.weighted_fen).short()))
            .collect();
        lines.push(self.t(
            &format!("加权预测：{}", weighted.join(" · ")),
            &format!("Weighted forecast: {}", weighted.join(" · ")),
        ));
        if f.undated > 0 {
            lines.push(self.t(
                &format!("（另有 {} 个商机没填成交时间，不在预测里）", f.undated),
                &format!("({} deals without a close date are not in it)", f.undated),
            ));
        }
        let c = &f.closed;
        let rate = c.win_rate.map_or_else(|| "—".to_owned(), |r| format!("{r}%"));
        let days = c
            .average_days_to_close
            .map_or_else(|| "—".to_owned(), |d| format!("{d}"));
        lines.push(self.t(
            &format!(
                "本月：赢单 {} 个 · {}；输单 {} 个；赢率 {rate}；平均 {days} 天成交",
                c.won_deals,
                Amount(c.won_amount_fen).short(),
                c.lost_deals
            ),
            &format!(
                "This month: won {} · {}; lost {}; win rate {rate}; {days} days to close on average",
                c.won_deals,
                Amount(c.won_amount_fen).short(),
                c.lost_deals
            ),
        ));
        if let Some(this) = f.months.first()
            && let Some(target) = this.target_fen.filter(|t| *t > 0)
        {
            let done = this.won_fen * 100 / target;
            let expected = (this.won_fen + this.weighted_fen) * 100 / target;
            lines.push(self.t(
                &format!(
                    "本月目标 {}：已赢 {done}%，加上加权预测 {expected}%",
                    Amount(target).short()
                ),
                &format!(
                    "Target this month {}: {done}% won, {expected}% with the weighted forecast",
                    Amount(target).short()
                ),
            ));
        }
        Ok(lines.join("\n"))
    }
}

//! The deals in the managers' summary: the team's open pipeline, the month's weighted forecast
//! and what was won against the month's target, and a link to the dashboard; and the alerts a
//! leader gets between summaries — a deal won, a large deal past its expected close.

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::compose::{heading_line, item_line};
use super::recipients::Recipient;
use crate::crm::forecast::{self, Scope};
use crate::crm::money::Amount;
use crate::crm::{customers, members};
use crate::db::entity::deal::{self, DealStatus};
use crate::db::entity::{customer, department, sales_target};
use crate::notify;
use crate::services::Services;
use crate::texts::Lang;
use crate::wecom::api::MessageBody;

/// The month's target of a leader's team: the targets of the departments they lead (the top ones
/// of what they lead, so a sub-department's is not counted twice), else the sum of their members'.
pub async fn team_target(
    db: &impl ConnectionTrait,
    leader: &str,
    team: &[String],
    month: &str,
) -> Result<Option<i64>, DbErr> {
    let led = members::led_departments(db, leader).await?;
    let parents: std::collections::HashMap<i64, i64> = department::Entity::find()
        .filter(department::Column::Id.is_in(led.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.parent_id))
        .collect();
    let roots: Vec<String> = led
        .iter()
        .filter(|d| parents.get(d).is_none_or(|p| !led.contains(p)))
        .map(i64::to_string)
        .collect();
    if let Some(sum) = targets_sum(db, "department", roots, month).await? {
        return Ok(Some(sum));
    }
    targets_sum(db, "member", team.to_vec(), month).await
}

/// The sum of the targets of `kind` for `ids` in `month`; `None` when none is set.
async fn targets_sum(
    db: &impl ConnectionTrait,
    kind: &str,
    ids: Vec<String>,
    month: &str,
) -> Result<Option<i64>, DbErr> {
    let amounts: Vec<i64> = sales_target::Entity::find()
        .filter(sales_target::Column::Scope.eq(kind))
        .filter(sales_target::Column::ScopeId.is_in(ids))
        .filter(sales_target::Column::Month.eq(month))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.amount_fen)
        .collect();
    Ok((!amounts.is_empty()).then(|| amounts.iter().sum()))
}

/// The summary's deal lines for `recipient` on `date` (markdown or text), empty when the team has
/// no deal at all.
pub async fn lines(
    s: &Services,
    recipient: &Recipient,
    date: NaiveDate,
    markdown: bool,
    lang: Lang,
) -> Result<Vec<String>, DbErr> {
    let scope = if recipient.departments.is_empty() {
        Scope::Everyone
    } else {
        Scope::Members(recipient.team.clone())
    };
    let month = forecast::month_key(date);
    let f = forecast::forecast(&s.db, &s.config, &scope, std::slice::from_ref(&month), None, s.tz()).await?;
    if f.open_deals == 0 && f.closed.won_deals == 0 && f.closed.lost_deals == 0 {
        return Ok(Vec::new());
    }
    let target = if recipient.departments.is_empty() {
        None
    } else {
        team_target(&s.db, &recipient.userid, &recipient.team, &month).await?
    };
    let en = lang.en();
    let item = |text: String| item_line(&text, markdown);
    let mut out = vec![heading_line(if en { "Deals" } else { "商机与预测" }, markdown)];
    out.push(item(if en {
        format!("Open {} · {}", f.open_deals, Amount(f.open_amount_fen).short())
    } else {
        format!("进行中 {} 个 · {}", f.open_deals, Amount(f.open_amount_fen).short())
    }));
    let m = f.months.first();
    let (weighted, won) = m.map_or((0, 0), |m| (m.weighted_fen, m.won_fen));
    let mut line = if en {
        format!(
            "This month: weighted forecast {} · won {}",
            Amount(weighted).short(),
            Amount(won).short()
        )
    } else {
        format!(
            "本月加权预测 {} · 已赢单 {}",
            Amount(weighted).short(),
            Amount(won).short()
        )
    };
    if let Some(target) = target.filter(|t| *t > 0) {
        let done = won * 100 / target;
        let expected = (won + weighted) * 100 / target;
        line.push_str(&if en {
            format!(
                " · target {} ({done}% won, {expected}% expected)",
                Amount(target).short()
            )
        } else {
            format!(" · 目标 {}（已完成 {done}%，预计 {expected}%）", Amount(target).short())
        });
    }
    out.push(item(line));
    if let Some(base) = s.config.web.base() {
        let url = format!("{base}/web/dashboard");
        out.push(item(match (markdown, en) {
            (true, false) => format!("[打开销售看板]({url})"),
            (true, true) => format!("[Open the dashboard]({url})"),
            (false, false) => format!("销售看板：{url}"),
            (false, true) => format!("Dashboard: {url}"),
        }));
    }
    Ok(out)
}

/// A deal just won: its owner's leaders are told, once per win (in the caller's transaction).
pub async fn deal_won(db: &impl ConnectionTrait, deal: &deal::Model) -> Result<(), DbErr> {
    if deal.status != DealStatus::Won {
        return Ok(());
    }
    let owner = members::display_name(db, &deal.owner_userid).await?;
    let who = customer::Entity::find_by_id(deal.customer_id)
        .one(db)
        .await?
        .map(|c| format!(" · {}", customers::display(&c)))
        .unwrap_or_default();
    let amount = deal
        .amount_fen
        .map_or_else(|| "金额未定".to_owned(), |f| Amount(f).short());
    let text = format!("🎉 {owner} 赢单：{} · {amount}{who}", deal.title);
    for leader in members::leaders_of(db, &deal.owner_userid).await? {
        let key = format!("won:{}:{}:{leader}", deal.id, deal.closed_at.unwrap_or(0));
        notify::enqueue(db, &key, &leader, &MessageBody::text(text.clone())).await?;
    }
    Ok(())
}

/// Open deals of at least `sales.large_deal_amount` whose expected close is before `today`: each
/// owner's leaders are told once per deal and close date (a new date that slips again, again).
/// Returns how many deals were reported.
pub async fn large_deals_slipping(s: &Services, today: NaiveDate) -> Result<usize, DbErr> {
    let threshold = s.config.sales.large_deal_amount.saturating_mul(100);
    if threshold <= 0 {
        return Ok(0);
    }
    let slipping = deal::Entity::find()
        .filter(deal::Column::Status.eq(DealStatus::Open))
        .filter(deal::Column::AmountFen.gte(threshold))
        .filter(deal::Column::ExpectedClose.lt(today.to_string()))
        .all(&s.db)
        .await?;
    for d in &slipping {
        let close = d.expected_close.clone().unwrap_or_default();
        let owner = members::display_name(&s.db, &d.owner_userid).await?;
        let amount = Amount(d.amount_fen.unwrap_or(0)).short();
        let text = format!(
            "⏳ 大单延期：{}（{amount}，{owner}）预计 {close} 成交，现在仍未关闭、停在「{}」。",
            d.title, d.stage
        );
        for leader in members::leaders_of(&s.db, &d.owner_userid).await? {
            let key = format!("slip:{}:{close}:{leader}", d.id);
            notify::enqueue(&s.db, &key, &leader, &MessageBody::text(text.clone())).await?;
        }
    }
    if !slipping.is_empty() {
        s.notifier.wake();
    }
    Ok(slipping.len())
}

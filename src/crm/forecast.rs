//! The pipeline and the forecast, for a member, a team or the whole org: open deals by stage
//! (count, amount), the weighted forecast per expected-close month (amount × win probability —
//! the deal's own, else its stage's), what was won and lost in a month, the win rate, the average
//! days to close, and the month's target. Amounts stay in whole fen; a weighted amount is rounded
//! to the nearest fen once per deal group. Each figure is one grouped query, whatever the number of
//! deals.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use chrono_tz::Tz;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use super::money::Amount;
use super::stages;
use crate::config::Config;
use crate::db::entity::deal::{self, DealStatus};
use crate::db::entity::sales_target;
use crate::texts::date_start;

/// Whose deals: some members (a rep, a team) or everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Members(Vec<String>),
    Everyone,
}

impl Scope {
    fn condition(&self) -> Condition {
        match self {
            Self::Members(members) => Condition::all().add(deal::Column::OwnerUserid.is_in(members.clone())),
            Self::Everyone => Condition::all(),
        }
    }
}

/// Open deals in one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageLine {
    pub stage: String,
    pub probability: u8,
    pub deals: u64,
    /// Known amounts only; `unpriced` deals have none yet.
    pub amount_fen: i64,
    pub unpriced: u64,
}

/// The weighted forecast of one expected-close month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthLine {
    /// `YYYY-MM`.
    pub month: String,
    pub deals: u64,
    pub amount_fen: i64,
    pub weighted_fen: i64,
    /// The month's target for the scope, when one is set.
    pub target_fen: Option<i64>,
    /// Won in that month (closed then).
    pub won_fen: i64,
}

/// What closed in a month.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Closed {
    pub won_deals: u64,
    pub won_amount_fen: i64,
    pub lost_deals: u64,
    /// Won ÷ (won + lost), in percent; `None` when nothing closed.
    pub win_rate: Option<u8>,
    /// Average days from made to won.
    pub average_days_to_close: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub pipeline: Vec<StageLine>,
    pub open_deals: u64,
    pub open_amount_fen: i64,
    pub months: Vec<MonthLine>,
    /// Open deals without an expected close date (not in any month).
    pub undated: u64,
    /// What closed in the first month asked for.
    pub closed: Closed,
}

/// Open deals grouped: stage, own probability, close month, count, known amount, unpriced count.
type OpenGroup = (String, Option<i16>, Option<String>, i64, Option<i64>, i64);

/// `YYYY-MM` of a date.
pub fn month_key(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The first day of the month `key` (`YYYY-MM`), if it is one.
pub fn month_start(key: &str) -> Option<NaiveDate> {
    let (y, m) = key.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// The month of `key` (`YYYY-MM`), 1–12; 0 when it is not a month key.
pub fn month_number(key: &str) -> u32 {
    month_start(key).map_or(0, |d| d.month())
}

/// `amount × percent / 100`, rounded to the nearest fen (halves away from zero).
pub fn weigh(amount: i64, percent: u8) -> i64 {
    let scaled = i128::from(amount) * i128::from(percent);
    let (q, r) = (scaled / 100, scaled % 100);
    (q + if r.abs() * 2 >= 100 { r.signum() } else { 0 }) as i64
}

/// The forecast of `scope` for `months` (the first one's closings are reported), with targets of
/// `target` (`("member", userid)` or `("department", id)`) when given.
pub async fn forecast(
    db: &impl ConnectionTrait,
    config: &Config,
    scope: &Scope,
    months: &[String],
    target: Option<(&str, &str)>,
    tz: Tz,
) -> Result<Forecast, DbErr> {
    let stages = stages::current(db, config).await?;
    // Open deals by (stage, own probability, month): few rows whatever the number of deals.
    let month = Expr::cust("substr(expected_close, 1, 7)");
    let rows: Vec<OpenGroup> = deal::Entity::find()
        .filter(scope.condition())
        .filter(deal::Column::Status.eq(DealStatus::Open))
        .select_only()
        .column(deal::Column::Stage)
        .column(deal::Column::Probability)
        .column_as(month.clone(), "month")
        .column_as(Expr::col(deal::Column::Id).count(), "deals")
        .column_as(Expr::cust("CAST(SUM(amount_fen) AS BIGINT)"), "amount")
        .column_as(Expr::cust("CAST(COUNT(*) - COUNT(amount_fen) AS BIGINT)"), "unpriced")
        .group_by(deal::Column::Stage)
        .group_by(deal::Column::Probability)
        .group_by(month)
        .into_tuple()
        .all(db)
        .await?;
    let mut by_stage: BTreeMap<usize, StageLine> = BTreeMap::new();
    let mut by_month: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
    let (mut open_deals, mut open_amount, mut undated) = (0, 0, 0);
    for (stage, own, month, deals, amount, unpriced) in rows {
        let (deals, amount, unpriced) = (deals as u64, amount.unwrap_or(0), unpriced as u64);
        open_deals += deals;
        open_amount += amount;
        let place = stages.iter().position(|s| *s == stage).unwrap_or(usize::MAX);
        let line = by_stage.entry(place).or_insert_with(|| StageLine {
            stage: stage.clone(),
            probability: stages::probability(config, &stages, &stage),
            deals: 0,
            amount_fen: 0,
            unpriced: 0,
        });
        line.deals += deals;
        line.amount_fen += amount;
        line.unpriced += unpriced;
        match month {
            Some(m) => {
                let entry = by_month.entry(m).or_default();
                entry.0 += deals;
                entry.1 += amount;
                entry.2 += weigh(amount, stages::deal_probability(config, &stages, &stage, own));
            }
            None => undated += deals,
        }
    }
    let targets = match target {
        Some((kind, id)) => targets_of(db, kind, id, months).await?,
        None => BTreeMap::new(),
    };
    let mut lines = Vec::new();
    for m in months {
        let (deals, amount, weighted) = by_month.get(m).copied().unwrap_or_default();
        let won = closed_in(db, scope, m, tz).await?.won_amount_fen;
        lines.push(MonthLine {
            month: m.clone(),
            deals,
            amount_fen: amount,
            weighted_fen: weighted,
            target_fen: targets.get(m).copied(),
            won_fen: won,
        });
    }
    let closed = match months.first() {
        Some(m) => closed_in(db, scope, m, tz).await?,
        None => Closed::default(),
    };
    Ok(Forecast {
        pipeline: by_stage.into_values().collect(),
        open_deals,
        open_amount_fen: open_amount,
        months: lines,
        undated,
        closed,
    })
}

/// What closed in `month` (its days in the org's zone).
pub async fn closed_in(db: &impl ConnectionTrait, scope: &Scope, month: &str, tz: Tz) -> Result<Closed, DbErr> {
    let Some(first) = month_start(month) else {
        return Ok(Closed::default());
    };
    let (start, end) = (date_start(first, tz), date_start(first + Months::new(1), tz));
    let rows: Vec<(DealStatus, i64, Option<i64>, Option<i64>)> = deal::Entity::find()
        .filter(scope.condition())
        .filter(deal::Column::Status.is_in([DealStatus::Won, DealStatus::Lost]))
        .filter(deal::Column::ClosedAt.gte(start))
        .filter(deal::Column::ClosedAt.lt(end))
        .select_only()
        .column(deal::Column::Status)
        .column_as(Expr::col(deal::Column::Id).count(), "deals")
        .column_as(Expr::cust("CAST(SUM(amount_fen) AS BIGINT)"), "amount")
        .column_as(Expr::cust("CAST(SUM(closed_at - created_at) AS BIGINT)"), "took")
        .group_by(deal::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut closed = Closed::default();
    let mut took_ms = 0;
    for (status, deals, amount, took) in rows {
        match status {
            DealStatus::Won => {
                closed.won_deals = deals as u64;
                closed.won_amount_fen = amount.unwrap_or(0);
                took_ms = took.unwrap_or(0);
            }
            _ => closed.lost_deals = deals as u64,
        }
    }
    let decided = closed.won_deals + closed.lost_deals;
    closed.win_rate = (closed.won_deals * 100).checked_div(decided).map(|r| r as u8);
    if closed.won_deals > 0 {
        let days = took_ms as f64 / 86_400_000.0 / closed.won_deals as f64;
        closed.average_days_to_close = Some((days * 10.0).round() / 10.0);
    }
    Ok(closed)
}

/// Targets of `kind` (`member` / `department`) `id` for `months`.
async fn targets_of(
    db: &impl ConnectionTrait,
    kind: &str,
    id: &str,
    months: &[String],
) -> Result<BTreeMap<String, i64>, DbErr> {
    Ok(sales_target::Entity::find()
        .filter(sales_target::Column::Scope.eq(kind))
        .filter(sales_target::Column::ScopeId.eq(id))
        .filter(sales_target::Column::Month.is_in(months.to_vec()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.month, t.amount_fen))
        .collect())
}

/// Sets (or with `None` clears) the target of `kind` `id` for `month`.
pub async fn set_target(
    db: &impl ConnectionTrait,
    kind: &str,
    id: &str,
    month: &str,
    amount: Option<Amount>,
    now: i64,
) -> Result<(), DbErr> {
    sales_target::Entity::delete_many()
        .filter(sales_target::Column::Scope.eq(kind))
        .filter(sales_target::Column::ScopeId.eq(id))
        .filter(sales_target::Column::Month.eq(month))
        .exec(db)
        .await?;
    if let Some(amount) = amount {
        sales_target::Entity::insert(sales_target::ActiveModel {
            scope: sea_orm::Set(kind.to_owned()),
            scope_id: sea_orm::Set(id.to_owned()),
            month: sea_orm::Set(month.to_owned()),
            amount_fen: sea_orm::Set(amount.fen()),
            updated_at: sea_orm::Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighing_rounds_to_the_nearest_fen_once() {
        assert_eq!(weigh(50_000_000, 25), 12_500_000);
        assert_eq!(weigh(1, 50), 1, "half a fen rounds up");
        assert_eq!(weigh(1, 49), 0);
        assert_eq!(weigh(333, 10), 33);
        assert_eq!(weigh(335, 10), 34);
        assert_eq!(weigh(i64::MAX / 100, 100), i64::MAX / 100);
        assert_eq!(weigh(12_345, 0), 0);
    }

    #[test]
    fn months_are_keys_of_the_calendar() {
        assert_eq!(month_key(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()), "2026-01");
        assert_eq!(
            month_start("2026-12"),
            Some(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
        );
        assert_eq!(month_start("2026-13"), None);
        assert_eq!(month_start("2026-1"), None);
        assert_eq!(month_start("26-01"), None);
    }
}

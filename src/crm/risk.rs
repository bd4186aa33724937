//! "At risk", defined once for every place that says it — the admin API's filter and field, the CSV
//! export, the customer card in chat and the managers' summary: a customer flagged when they deleted
//! their rep or the relation ended, or one in an open stage without a follow-up (or, never followed
//! up, since they arrived) for `summary.at_risk_after_days`.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr};

use crate::config::Config;
use crate::db::entity::customer;

const DAY_MS: i64 = 86_400_000;

/// The open stages: every stage but the closing two (won, lost).
pub fn open_stages(stages: &[String]) -> &[String] {
    &stages[..stages.len().saturating_sub(2)]
}

/// Customers in an open stage whose last follow-up (or, without one, their arrival) is older than
/// `threshold`. Never NULL in SQL, so that its negation is exact too.
pub fn quiet_in_open_stage(stages: &[String], threshold: i64) -> Condition {
    let last_touch = Func::coalesce([
        Expr::col(customer::Column::LastFollowUpAt),
        Expr::col(customer::Column::CreatedAt),
    ]);
    Condition::all()
        .add(customer::Column::Stage.is_not_null())
        .add(customer::Column::Stage.is_in(open_stages(stages).to_vec()))
        .add(Expr::expr(last_touch).lt(threshold))
}

/// The rule as it stands at one moment: the stages in force and how long "quiet" is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    stages: Vec<String>,
    quiet_days: u32,
    now: i64,
}

impl Risk {
    pub fn new(stages: Vec<String>, quiet_days: u32, now: i64) -> Self {
        Self {
            stages,
            quiet_days,
            now,
        }
    }

    /// The rule with the stages in force and `summary.at_risk_after_days`, at `now`.
    pub async fn current(db: &impl ConnectionTrait, config: &Config, now: i64) -> Result<Self, DbErr> {
        let stages = super::stages::current(db, config).await?;
        Ok(Self::new(stages, config.summary.at_risk_after_days, now))
    }

    fn threshold(&self) -> i64 {
        self.now - i64::from(self.quiet_days) * DAY_MS
    }

    /// Flagged: they deleted their rep, or the relation ended.
    pub fn flagged() -> Condition {
        Condition::all().add(customer::Column::AtRisk.eq(true))
    }

    /// Not flagged, but quiet too long in an open stage.
    pub fn quiet(&self) -> Condition {
        Condition::all()
            .add(customer::Column::AtRisk.eq(false))
            .add(quiet_in_open_stage(&self.stages, self.threshold()))
    }

    /// At risk, either way.
    pub fn condition(&self) -> Condition {
        Condition::any().add(Self::flagged()).add(self.quiet())
    }

    /// Why `c` is at risk (the recorded reason, or the days without a follow-up), or `None`.
    pub fn reason(&self, c: &customer::Model) -> Option<String> {
        if c.at_risk {
            return Some(c.at_risk_reason.clone().unwrap_or_else(|| "流失风险".into()));
        }
        let stage = c
            .stage
            .as_deref()
            .filter(|s| open_stages(&self.stages).iter().any(|o| o == s))?;
        let since = c.last_follow_up_at.unwrap_or(c.created_at);
        (since < self.threshold()).then(|| format!("{} 天未跟进（{stage}）", (self.now - since) / DAY_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(stage: Option<&str>, last_follow_up: Option<i64>, flagged: bool) -> customer::Model {
        customer::Model {
            stage: stage.map(str::to_owned),
            last_follow_up_at: last_follow_up,
            at_risk: flagged,
            at_risk_reason: flagged.then(|| "客户删除了员工".into()),
            ..crate::crm::export::sample_customer()
        }
    }

    #[test]
    fn at_risk_is_flagged_or_quiet_in_an_open_stage() {
        let stages: Vec<String> = ["初步接触", "方案报价", "赢单", "输单"].map(String::from).to_vec();
        let now = 100 * DAY_MS;
        let risk = Risk::new(stages, 7, now);
        let quiet = customer(Some("方案报价"), Some(now - 9 * DAY_MS), false);
        assert_eq!(risk.reason(&quiet).as_deref(), Some("9 天未跟进（方案报价）"));
        let recent = customer(Some("方案报价"), Some(now - 2 * DAY_MS), false);
        assert_eq!(risk.reason(&recent), None);
        let won = customer(Some("赢单"), Some(now - 30 * DAY_MS), false);
        assert_eq!(risk.reason(&won), None, "a closed stage is never quiet");
        let flagged = customer(Some("赢单"), None, true);
        assert_eq!(risk.reason(&flagged).as_deref(), Some("客户删除了员工"));
    }
}

//! The figures a summary shows: per member for the day, the day before and the week before it, and
//! the team's customers at risk.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::crm::figures::{self, Figures};
use crate::crm::risk::Risk;
use crate::crm::{customers, pipeline, stages};
use crate::db::entity::customer;
use crate::services::Services;
use crate::texts::date_start;

pub(super) const DAY_MS: i64 = 86_400_000;
/// At-risk customers listed by name (the rest are counted).
const AT_RISK_LISTED: u64 = 8;

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
    let won = pipeline::won_stage(&stages::current(&s.db, &s.config).await?).to_owned();
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

pub(super) fn team_total(figures: &HashMap<String, Figures>, team: &[String]) -> Figures {
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

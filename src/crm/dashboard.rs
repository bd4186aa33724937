//! The managers' dashboard as figures: whose (a leader's departments, or the whole org), the
//! funnel and the weighted forecast (from [`super::forecast`]) against the departments' targets,
//! team activity per day over 30 days, the customers at risk, and a line per rep. The page draws
//! them; the numbers are the same as `/api/v1/forecast` for the same scope.

use std::collections::{BTreeMap, HashMap};

use chrono::Months;
use chrono_tz::Tz;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use super::forecast::{self, Forecast, Scope};
use super::risk::Risk;
use super::{activity, customers, members};
use crate::config::Config;
use crate::db::entity::deal::{self, DealStatus};
use crate::db::entity::{customer, follower, member, sales_target};
use crate::texts::{date_start, local, local_date};

const DAY_MS: i64 = 86_400_000;
/// Days of activity shown.
pub const ACTIVITY_DAYS: i64 = 30;

/// Who a dashboard is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// Leads these departments (with the ones under them): their members.
    Leader {
        departments: Vec<i64>,
        members: Vec<String>,
    },
    /// Sees the whole org (`web.dashboard_admins`).
    Admin,
}

impl Viewer {
    /// What `userid` may see on the dashboard; `None` for a member who leads nothing and is no
    /// dashboard admin.
    pub async fn of(db: &impl ConnectionTrait, config: &Config, userid: &str) -> Result<Option<Self>, DbErr> {
        if config.web.dashboard_admins.iter().any(|a| a == userid) {
            return Ok(Some(Self::Admin));
        }
        let departments = members::led_departments(db, userid).await?;
        if departments.is_empty() {
            return Ok(None);
        }
        let members = members::members_of(db, &departments).await?;
        Ok(Some(Self::Leader { departments, members }))
    }

    fn scope(&self) -> Scope {
        match self {
            Self::Leader { members, .. } => Scope::Members(members.clone()),
            Self::Admin => Scope::Everyone,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayActivity {
    /// `MM-DD`.
    pub day: String,
    pub follow_ups: u64,
    pub new_customers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtRisk {
    pub external_userid: String,
    pub name: String,
    pub owner: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepLine {
    pub userid: String,
    pub name: String,
    pub open_deals: u64,
    pub pipeline_fen: i64,
    pub won_this_month_fen: i64,
    pub follow_ups_30d: u64,
    pub new_customers_30d: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    pub forecast: Forecast,
    pub activity: Vec<DayActivity>,
    pub at_risk: Vec<AtRisk>,
    pub at_risk_total: u64,
    pub reps: Vec<RepLine>,
}

/// The dashboard of `viewer` at `now`: this month and the next two in the forecast.
pub async fn build(
    db: &impl ConnectionTrait,
    config: &Config,
    viewer: &Viewer,
    now: i64,
    tz: Tz,
) -> Result<Dashboard, DbErr> {
    let scope = viewer.scope();
    let today = local_date(now, tz);
    let first = forecast::month_start(&forecast::month_key(today)).unwrap_or(today);
    let months: Vec<String> = (0..3).map(|i| forecast::month_key(first + Months::new(i))).collect();
    let mut f = forecast::forecast(db, config, &scope, &months, None, tz).await?;
    // The targets of the departments in view (a leader's led ones; the admin's: every one).
    let departments: Option<Vec<String>> = match viewer {
        Viewer::Leader { departments, .. } => Some(departments.iter().map(i64::to_string).collect()),
        Viewer::Admin => None,
    };
    let mut targets = sales_target::Entity::find()
        .filter(sales_target::Column::Scope.eq("department"))
        .filter(sales_target::Column::Month.is_in(months.clone()));
    if let Some(ids) = departments {
        targets = targets.filter(sales_target::Column::ScopeId.is_in(ids));
    }
    let mut by_month: BTreeMap<String, i64> = BTreeMap::new();
    for t in targets.all(db).await? {
        *by_month.entry(t.month).or_default() += t.amount_fen;
    }
    for line in &mut f.months {
        line.target_fen = by_month.get(&line.month).copied();
    }
    let since = date_start(today, tz) - (ACTIVITY_DAYS - 1) * DAY_MS;
    let (activity, per_member) = activity(db, &scope, since, tz, today).await?;
    let (at_risk, at_risk_total) = at_risk(db, config, &scope, now).await?;
    let reps = reps(db, &scope, &per_member, date_start(first, tz)).await?;
    Ok(Dashboard {
        forecast: f,
        activity,
        at_risk,
        at_risk_total,
        reps,
    })
}

fn members_filter<C: ColumnTrait>(scope: &Scope, column: C) -> sea_orm::Condition {
    match scope {
        Scope::Members(m) => sea_orm::Condition::all().add(column.is_in(m.clone())),
        Scope::Everyone => sea_orm::Condition::all(),
    }
}

/// Per member since `since`: (follow-ups, new customers).
type PerMember = HashMap<String, (u64, u64)>;

/// Follow-ups and new customers per local day since `since`, and per member: the follow-ups from
/// their daily roll-up ([`activity`]), the new customers from one scan of followers grouped by
/// member and day.
async fn activity(
    db: &impl ConnectionTrait,
    scope: &Scope,
    since: i64,
    tz: Tz,
    today: chrono::NaiveDate,
) -> Result<(Vec<DayActivity>, PerMember), DbErr> {
    let first = local_date(since, tz);
    let index_of = |day: chrono::NaiveDate| (day - first).num_days();
    let members = match scope {
        Scope::Members(m) => Some(m.as_slice()),
        Scope::Everyone => None,
    };
    let notes: Vec<(String, i64, i64)> = activity::since(db, members, since, tz)
        .await?
        .into_iter()
        .map(|(member, day, n)| (member, index_of(day), n))
        .collect();
    // New customers bucket by the zone's offset now (a DST change moves a bucket edge by an hour).
    let offset = local(since, tz).naive_local().and_utc().timestamp_millis() - since;
    let day = |column: &str| Expr::cust(format!("({column} + {offset}) / {DAY_MS}"));
    let first_bucket = (since + offset).div_euclid(DAY_MS);
    let added: Vec<(String, i64, i64)> = follower::Entity::find()
        .filter(members_filter(scope, follower::Column::Userid))
        .filter(follower::Column::AddedAt.gte(since))
        .select_only()
        .column(follower::Column::Userid)
        .column_as(day("added_at"), "day")
        .column_as(Expr::col(follower::Column::CustomerId).count(), "n")
        .group_by(follower::Column::Userid)
        .group_by(day("added_at"))
        .into_tuple::<(String, i64, i64)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(member, bucket, n)| (member, bucket - first_bucket, n))
        .collect();
    let mut per_member: PerMember = HashMap::new();
    let (mut by_day_notes, mut by_day_added): (HashMap<i64, i64>, HashMap<i64, i64>) = Default::default();
    for (member, day, n) in notes {
        *by_day_notes.entry(day).or_default() += n;
        per_member.entry(member).or_default().0 += n as u64;
    }
    for (member, day, n) in added {
        *by_day_added.entry(day).or_default() += n;
        per_member.entry(member).or_default().1 += n as u64;
    }
    let (notes, added) = (by_day_notes, by_day_added);
    let days = (0..ACTIVITY_DAYS)
        .map(|i| {
            let date = today - chrono::Days::new((ACTIVITY_DAYS - 1 - i) as u64);
            DayActivity {
                day: date.format("%m-%d").to_string(),
                follow_ups: Ord::max(notes.get(&i).copied().unwrap_or(0), 0) as u64,
                new_customers: Ord::max(added.get(&i).copied().unwrap_or(0), 0) as u64,
            }
        })
        .collect();
    Ok((days, per_member))
}

/// The customers at risk (the summary's definition), the quietest first: the first 10 and how
/// many in all.
async fn at_risk(
    db: &impl ConnectionTrait,
    config: &Config,
    scope: &Scope,
    now: i64,
) -> Result<(Vec<AtRisk>, u64), DbErr> {
    let risk = Risk::current(db, config, now).await?;
    let in_scope = customer::Entity::find()
        .filter(risk.condition())
        .filter(members_filter(scope, customer::Column::OwnerUserid));
    let total = in_scope.clone().count(db).await?;
    let found = in_scope
        .order_by_asc(customer::Column::LastFollowUpAt)
        .limit(10)
        .all(db)
        .await?;
    let names = member_names(db).await?;
    let shown = found
        .into_iter()
        .take(10)
        .map(|c| {
            let owner = c.owner_userid.clone().unwrap_or_default();
            AtRisk {
                reason: risk.reason(&c).unwrap_or_default(),
                name: customers::display(&c),
                owner: names.get(&owner).cloned().unwrap_or(owner),
                external_userid: c.external_userid,
            }
        })
        .collect();
    Ok((shown, total))
}

async fn member_names(db: &impl ConnectionTrait) -> Result<HashMap<String, String>, DbErr> {
    Ok(member::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.userid.clone(), members::name_or_id(m.name, &m.userid)))
        .collect())
}

/// A line per rep in view (active members), the biggest pipeline first.
async fn reps(
    db: &impl ConnectionTrait,
    scope: &Scope,
    activity: &PerMember,
    month_start: i64,
) -> Result<Vec<RepLine>, DbErr> {
    let mut active = member::Entity::find().filter(member::Column::Active.eq(true));
    if let Scope::Members(m) = scope {
        active = active.filter(member::Column::Userid.is_in(m.clone()));
    }
    let active = active.all(db).await?;
    let userids: Vec<String> = active.iter().map(|m| m.userid.clone()).collect();
    let open: Vec<(String, i64, Option<i64>)> = deal::Entity::find()
        .filter(deal::Column::Status.eq(DealStatus::Open))
        .filter(deal::Column::OwnerUserid.is_in(userids.clone()))
        .select_only()
        .column(deal::Column::OwnerUserid)
        .column_as(Expr::col(deal::Column::Id).count(), "n")
        .column_as(Expr::cust("CAST(SUM(amount_fen) AS BIGINT)"), "amount")
        .group_by(deal::Column::OwnerUserid)
        .into_tuple()
        .all(db)
        .await?;
    let won: Vec<(String, Option<i64>)> = deal::Entity::find()
        .filter(deal::Column::Status.eq(DealStatus::Won))
        .filter(deal::Column::ClosedAt.gte(month_start))
        .filter(deal::Column::OwnerUserid.is_in(userids.clone()))
        .select_only()
        .column(deal::Column::OwnerUserid)
        .column_as(Expr::cust("CAST(SUM(amount_fen) AS BIGINT)"), "amount")
        .group_by(deal::Column::OwnerUserid)
        .into_tuple()
        .all(db)
        .await?;
    let open: HashMap<String, (i64, i64)> = open.into_iter().map(|(u, n, a)| (u, (n, a.unwrap_or(0)))).collect();
    let won: HashMap<String, i64> = won.into_iter().map(|(u, a)| (u, a.unwrap_or(0))).collect();
    let mut lines: Vec<RepLine> = active
        .into_iter()
        .map(|m| {
            let (n, pipeline) = open.get(&m.userid).copied().unwrap_or_default();
            let (notes, added) = activity.get(&m.userid).copied().unwrap_or_default();
            RepLine {
                name: members::name_or_id(m.name, &m.userid),
                open_deals: n as u64,
                pipeline_fen: pipeline,
                won_this_month_fen: won.get(&m.userid).copied().unwrap_or(0),
                follow_ups_30d: notes,
                new_customers_30d: added,
                userid: m.userid,
            }
        })
        .collect();
    lines.sort_by(|a, b| b.pipeline_fen.cmp(&a.pipeline_fen).then(a.name.cmp(&b.name)));
    Ok(lines)
}

//! Assignment rules: who gets a lead without an owner — the department's active members in turn
//! (round robin), the one holding the fewest open leads, or a list in turn — skipping inactive
//! members and those at the cap. Each assignment is recorded (`lead_assignments`, audited) and
//! told to the rep by `jobs::leads`.

use std::collections::BTreeSet;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::audit::{self, Actor};
use super::members;
use super::pool::{self, Change};
use crate::config::{AssignRule, AssignmentRules};
use crate::db::entity::lead_assignment::LeadAction;
use crate::db::entity::{customer, kv_state, member};

/// Where a rule looks for reps: a department (its sub-departments included), or everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Among {
    Everyone,
    Department(i64),
}

impl Among {
    /// The rules' department (0: everyone).
    pub fn configured(rules: &AssignmentRules) -> Self {
        if rules.department == 0 {
            Self::Everyone
        } else {
            Self::Department(rules.department)
        }
    }

    fn key(self) -> String {
        match self {
            Self::Everyone => "all".into(),
            Self::Department(id) => format!("department:{id}"),
        }
    }
}

/// The rep `rule` picks among `among`, with the method's name; `None` when the rule is the pool
/// or nobody is eligible (every candidate inactive or at `max_open_leads`). Round robin and
/// lists remember whose turn it was in `kv_state`, so call within the transaction that assigns.
pub async fn choose(
    db: &impl ConnectionTrait,
    (rule, among, max_open_leads): (&AssignRule, Among, u32),
    stages: &[String],
    except: Option<&str>,
) -> Result<Option<(String, &'static str)>, DbErr> {
    let (candidates, turn_key) = match rule {
        AssignRule::Pool => return Ok(None),
        AssignRule::List(list) => {
            let active: BTreeSet<String> = member::Entity::find()
                .filter(member::Column::Userid.is_in(list.iter().cloned()))
                .filter(member::Column::Active.eq(true))
                .all(db)
                .await?
                .into_iter()
                .map(|m| m.userid)
                .collect();
            let mut seen = BTreeSet::new();
            let ordered: Vec<String> = list
                .iter()
                .filter(|u| active.contains(*u) && seen.insert((*u).clone()))
                .cloned()
                .collect();
            (ordered, format!("assign.turn:list:{}", list.join(",")))
        }
        AssignRule::RoundRobin | AssignRule::LeastLoaded => {
            let userids = match among {
                Among::Everyone => member::Entity::find()
                    .filter(member::Column::Active.eq(true))
                    .all(db)
                    .await?
                    .into_iter()
                    .map(|m| m.userid)
                    .collect::<Vec<_>>(),
                Among::Department(id) => {
                    let tree = members::department_tree(db, &[id]).await?;
                    let listed = members::members_of(db, &tree).await?;
                    member::Entity::find()
                        .filter(member::Column::Userid.is_in(listed))
                        .filter(member::Column::Active.eq(true))
                        .all(db)
                        .await?
                        .into_iter()
                        .map(|m| m.userid)
                        .collect()
                }
            };
            let mut sorted = userids;
            sorted.sort();
            (sorted, format!("assign.turn:{}", among.key()))
        }
    };
    let mut eligible = Vec::new();
    for userid in candidates {
        if except == Some(userid.as_str()) {
            continue;
        }
        let load = pool::open_leads_of(db, stages, &userid).await?;
        if max_open_leads == 0 || load < u64::from(max_open_leads) {
            eligible.push((userid, load));
        }
    }
    if eligible.is_empty() {
        return Ok(None);
    }
    if *rule == AssignRule::LeastLoaded {
        let (userid, _) = eligible
            .into_iter()
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
            .expect("not empty");
        return Ok(Some((userid, "least_loaded")));
    }
    // The one after whoever had the last turn, wrapping around: a list in its own order, a
    // department in userid order (so a member joining or leaving does not reset the turns).
    let last = kv_state::Entity::find_by_id(turn_key.clone())
        .one(db)
        .await?
        .map(|row| row.value);
    let start = match (&last, rule) {
        (None, _) => 0,
        // The first eligible entry after the last one in the list's own order, even when the last
        // one is no longer eligible.
        (Some(last), AssignRule::List(list)) => match list.iter().position(|u| u == last) {
            None => 0,
            Some(i) => list[i + 1..]
                .iter()
                .chain(list[..=i].iter())
                .find_map(|u| eligible.iter().position(|(e, _)| e == u))
                .unwrap_or(0),
        },
        (Some(last), _) => eligible.iter().position(|(u, _)| u > last).unwrap_or(0),
    };
    let userid = eligible[start].0.clone();
    crate::db::put_state(db, &turn_key, &userid, crate::db::now_ms()).await?;
    let method = if matches!(rule, AssignRule::List(_)) {
        "list"
    } else {
        "round_robin"
    };
    Ok(Some((userid, method)))
}

/// Gives `lead` to `userid`, chosen by `method`, from its owner `lead.owner_userid` (none: from
/// no one or the pool). False when someone else moved it first.
pub async fn assign(
    db: &impl ConnectionTrait,
    actor: &Actor,
    lead: &customer::Model,
    userid: &str,
    method: &str,
    reason: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let from = lead.owner_userid.as_deref();
    let still = match from {
        Some(owner) => customer::Column::OwnerUserid.eq(owner),
        None => customer::Column::OwnerUserid.is_null(),
    };
    let done = customer::Entity::update_many()
        .col_expr(customer::Column::OwnerUserid, Expr::val(userid))
        .col_expr(customer::Column::OwnerSince, Expr::val(now))
        .col_expr(customer::Column::PooledAt, Expr::val(Option::<i64>::None))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(lead.id))
        .filter(still)
        .exec(db)
        .await?;
    if done.rows_affected != 1 {
        return Ok(false);
    }
    let change = Change {
        customer_id: lead.id,
        to: Some(userid),
        from: from.or(lead.previous_owner.as_deref()),
        action: LeadAction::Assigned,
        method: Some(method),
        reason: Some(reason),
    };
    pool::record(db, actor, &change, now).await?;
    let detail = serde_json::json!({ "from": from, "to": userid, "method": method, "reason": reason });
    audit::record(db, actor, "lead.assigned", Some(lead.id), Some(userid), detail).await?;
    Ok(true)
}

/// Finds an owner for `lead` by `rule` (never `except`) and gives it to them, or sends it to the
/// pool when the rule is the pool or nobody is eligible. Returns the new owner.
pub async fn place(
    db: &impl ConnectionTrait,
    actor: &Actor,
    rule: (&AssignRule, Among, u32),
    stages: &[String],
    (lead, except): (&customer::Model, Option<&str>),
    reason: &str,
    now: i64,
) -> Result<Option<String>, DbErr> {
    if let Some((userid, method)) = choose(db, rule, stages, except).await?
        && assign(db, actor, lead, &userid, method, reason, now).await?
    {
        return Ok(Some(userid));
    }
    if lead.pooled_at.is_none() {
        let from = lead.owner_userid.as_deref();
        pool::to_pool(db, actor, lead, from, LeadAction::Pooled, reason, now).await?;
    }
    Ok(None)
}

/// The department a member belongs to first (their main department), for a channel's rule.
pub async fn home_department(db: &impl ConnectionTrait, userid: &str) -> Result<Option<i64>, DbErr> {
    Ok(member::Entity::find_by_id(userid.to_owned())
        .one(db)
        .await?
        .and_then(|m| m.main_department))
}

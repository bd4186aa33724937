//! The lead pool (公海): leads owned by no one. Reps claim from it (within the day's cap, their
//! holding cap and the cooldown on a lead they gave back), give leads back with a reason, and the
//! recycle rules send leads left without a follow-up (or a stage move) back to it. Only CRM
//! ownership moves: a customer who is a rep's WeCom contact stays their contact.
//!
//! Every change of hands is one conditional update — the race for a lead has one winner — and a
//! row in `lead_assignments`, in the same transaction.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use serde::{Deserialize, Serialize};

use super::audit::{self, Actor};
use super::pipeline::{lost_stage, won_stage};
use crate::config::{AssignmentRules, Config, PoolRules};
use crate::db::entity::lead_assignment::{self, LeadAction};
use crate::db::entity::{customer, kv_state, member};
use crate::texts::start_of_day;

pub const DAY_MS: i64 = 86_400_000;
const RULES_KEY: &str = "lead.rules";

/// The assignment and pool rules in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadRules {
    pub assignment: AssignmentRules,
    pub pool: PoolRules,
}

/// The rules in force: an admin's (stored, for every instance), else the configuration's.
pub async fn rules(db: &impl ConnectionTrait, config: &Config) -> Result<LeadRules, DbErr> {
    Ok(stored_rules(db).await?.unwrap_or_else(|| configured_rules(config)))
}

/// The configuration's rules (`[assignment]`, `[pool]`).
pub fn configured_rules(config: &Config) -> LeadRules {
    LeadRules {
        assignment: config.assignment.clone(),
        pool: config.pool.clone(),
    }
}

/// An admin's rules, when they have replaced the configuration's.
pub async fn stored_rules(db: &impl ConnectionTrait) -> Result<Option<LeadRules>, DbErr> {
    let stored = kv_state::Entity::find_by_id(RULES_KEY.to_owned()).one(db).await?;
    Ok(stored.and_then(|row| serde_json::from_str::<LeadRules>(&row.value).ok()))
}

/// Replaces the rules for every instance, in the audit log (before and after).
pub async fn replace_rules(
    db: &impl ConnectionTrait,
    config: &Config,
    actor: &Actor,
    new: &LeadRules,
    now: i64,
) -> Result<(), DbErr> {
    let before = rules(db, config).await?;
    let value = serde_json::to_string(new).expect("rules serialize");
    crate::db::put_state(db, RULES_KEY, &value, now).await?;
    let detail = serde_json::json!({ "before": before, "after": new });
    audit::record(db, actor, "rules.update", None, None, detail).await?;
    Ok(())
}

/// Customers that are open leads: in no stage yet, or in an open one (not won, not lost).
pub fn open_lead(stages: &[String]) -> Condition {
    Condition::any()
        .add(customer::Column::Stage.is_null())
        .add(customer::Column::Stage.is_not_in([won_stage(stages), lost_stage(stages)]))
}

/// How many open leads `userid` owns.
pub async fn open_leads_of(db: &impl ConnectionTrait, stages: &[String], userid: &str) -> Result<u64, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::OwnerUserid.eq(userid))
        .filter(open_lead(stages))
        .count(db)
        .await
}

/// Leads in the pool matching `keyword` (name, company, pinyin, phone; empty: all), the most
/// recently pooled first.
pub async fn list(db: &impl ConnectionTrait, keyword: &str, limit: u64) -> Result<Vec<customer::Model>, DbErr> {
    let mut query = customer::Entity::find()
        .filter(customer::Column::PooledAt.is_not_null())
        .filter(customer::Column::OwnerUserid.is_null());
    for word in keyword.split_whitespace() {
        query = query.filter(customer::Column::SearchText.contains(word.to_lowercase()));
    }
    query
        .order_by_desc(customer::Column::PooledAt)
        .order_by_desc(customer::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// How many leads are in the pool.
pub async fn size(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::PooledAt.is_not_null())
        .filter(customer::Column::OwnerUserid.is_null())
        .count(db)
        .await
}

/// Why a claim was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Someone else has it (or it left the pool otherwise).
    #[error("the lead is no longer in the pool")]
    Taken { owner: Option<String> },
    #[error("the lead came back from this rep; they may claim it again from {until}")]
    Cooldown { until: i64 },
    #[error("{cap} leads claimed today already")]
    DailyCap { cap: u32 },
    #[error("holding {held} open leads, the most one may hold to claim more")]
    HoldingCap { held: u64 },
    #[error("only active members may claim leads")]
    Inactive,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// How many leads `userid` claimed since the start of the org's day.
pub async fn claimed_today(db: &impl ConnectionTrait, userid: &str, now: i64, tz: chrono_tz::Tz) -> Result<u64, DbErr> {
    lead_assignment::Entity::find()
        .filter(lead_assignment::Column::Userid.eq(userid))
        .filter(lead_assignment::Column::Action.eq(LeadAction::Claimed))
        .filter(lead_assignment::Column::At.gte(start_of_day(now, tz)))
        .count(db)
        .await
}

/// `userid` takes lead `customer_id` from the pool. Call within a transaction: the caps are read
/// and the lead taken in it. Exactly one of two reps claiming at once wins; the other gets
/// [`ClaimError::Taken`].
pub async fn claim(
    db: &impl ConnectionTrait,
    rules: &PoolRules,
    stages: &[String],
    userid: &str,
    customer_id: i64,
    (now, tz): (i64, chrono_tz::Tz),
) -> Result<customer::Model, ClaimError> {
    let active = member::Entity::find_by_id(userid.to_owned())
        .one(db)
        .await?
        .is_some_and(|m| m.active);
    if !active {
        return Err(ClaimError::Inactive);
    }
    let Some(lead) = customer::Entity::find_by_id(customer_id).one(db).await? else {
        return Err(ClaimError::Taken { owner: None });
    };
    if lead.pooled_at.is_none() || lead.owner_userid.is_some() {
        return Err(ClaimError::Taken {
            owner: lead.owner_userid,
        });
    }
    if lead.previous_owner.as_deref() == Some(userid) {
        let until = lead.pooled_at.unwrap_or(now) + i64::from(rules.reclaim_cooldown_days) * DAY_MS;
        if now < until {
            return Err(ClaimError::Cooldown { until });
        }
    }
    if rules.claims_per_day > 0 && claimed_today(db, userid, now, tz).await? >= u64::from(rules.claims_per_day) {
        return Err(ClaimError::DailyCap {
            cap: rules.claims_per_day,
        });
    }
    if rules.max_held > 0 {
        let held = open_leads_of(db, stages, userid).await?;
        if held >= u64::from(rules.max_held) {
            return Err(ClaimError::HoldingCap { held });
        }
    }
    let taken = customer::Entity::update_many()
        .col_expr(customer::Column::OwnerUserid, Expr::val(userid))
        .col_expr(customer::Column::OwnerSince, Expr::val(now))
        .col_expr(customer::Column::PooledAt, Expr::val(Option::<i64>::None))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(customer_id))
        .filter(customer::Column::PooledAt.is_not_null())
        .filter(customer::Column::OwnerUserid.is_null())
        .exec(db)
        .await?;
    let after = customer::Entity::find_by_id(customer_id).one(db).await?;
    if taken.rows_affected != 1 {
        return Err(ClaimError::Taken {
            owner: after.and_then(|c| c.owner_userid),
        });
    }
    let actor = Actor::Member(userid.to_owned());
    let change = Change {
        customer_id,
        to: Some(userid),
        from: lead.previous_owner.as_deref(),
        action: LeadAction::Claimed,
        method: None,
        reason: None,
    };
    record(db, &actor, &change, now).await?;
    let detail = serde_json::json!({
        "pooled_at": lead.pooled_at, "pool_reason": lead.pool_reason, "previous_owner": lead.previous_owner,
    });
    audit::record(db, &actor, "lead.claimed", Some(customer_id), Some(userid), detail).await?;
    Ok(after.expect("claimed just now"))
}

/// Sends `lead` from its owner `from` to the pool: given back by them (`Returned`, their reason),
/// by the recycle rules (`Recycled`) or by an admin or a departure (`Pooled`). False when `from`
/// no longer owns it (someone else moved it first).
pub async fn to_pool(
    db: &impl ConnectionTrait,
    actor: &Actor,
    lead: &customer::Model,
    from: Option<&str>,
    action: LeadAction,
    reason: &str,
    now: i64,
) -> Result<bool, DbErr> {
    to_pool_if(db, actor, lead, (from, Condition::all()), action, reason, now).await
}

/// [`to_pool`], only while `still` holds for the lead (a recycle: still due when it moves, so a
/// note written meanwhile keeps it).
pub async fn to_pool_if(
    db: &impl ConnectionTrait,
    actor: &Actor,
    lead: &customer::Model,
    (from, still): (Option<&str>, Condition),
    action: LeadAction,
    reason: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let mut update = customer::Entity::update_many()
        .col_expr(customer::Column::OwnerUserid, Expr::val(Option::<String>::None))
        .col_expr(customer::Column::PooledAt, Expr::val(now))
        .col_expr(customer::Column::PoolReason, Expr::val(reason))
        .col_expr(customer::Column::PreviousOwner, Expr::val(from))
        .col_expr(customer::Column::OwnerSince, Expr::val(Option::<i64>::None))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(lead.id))
        .filter(still);
    update = match from {
        Some(owner) => update.filter(customer::Column::OwnerUserid.eq(owner)),
        None => update
            .filter(customer::Column::OwnerUserid.is_null())
            .filter(customer::Column::PooledAt.is_null()),
    };
    if update.exec(db).await?.rows_affected != 1 {
        return Ok(false);
    }
    let change = Change {
        customer_id: lead.id,
        to: None,
        from,
        action,
        method: None,
        reason: Some(reason),
    };
    record(db, actor, &change, now).await?;
    let detail = serde_json::json!({ "from": from, "reason": reason, "owner_since": lead.owner_since });
    audit::record(
        db,
        actor,
        &format!("lead.{}", action.as_str()),
        Some(lead.id),
        from,
        detail,
    )
    .await?;
    Ok(true)
}

/// One change of hands, as `lead_assignments` keeps it.
pub struct Change<'a> {
    pub customer_id: i64,
    pub to: Option<&'a str>,
    pub from: Option<&'a str>,
    pub action: LeadAction,
    pub method: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// Records a change of hands. Assignments and recycles wait to be told to the rep they concern
/// (`jobs::leads`); the rest need no message.
pub async fn record(db: &impl ConnectionTrait, actor: &Actor, change: &Change<'_>, now: i64) -> Result<(), DbErr> {
    let told = !matches!(change.action, LeadAction::Assigned | LeadAction::Recycled);
    lead_assignment::Entity::insert(lead_assignment::ActiveModel {
        customer_id: Set(change.customer_id),
        userid: Set(change.to.map(str::to_owned)),
        previous_owner: Set(change.from.map(str::to_owned)),
        action: Set(change.action),
        method: Set(change.method.map(str::to_owned)),
        reason: Set(change.reason.map(str::to_owned)),
        actor: Set(actor.name()),
        at: Set(now),
        notified: Set(told),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Takes back `userid`'s claim of lead `id`: in the pool again as it was before (`before`: the
/// claim's audit detail). False when it is no longer theirs.
pub async fn undo_claim(
    db: &impl ConnectionTrait,
    id: i64,
    userid: &str,
    before: &serde_json::Value,
    now: i64,
) -> Result<bool, DbErr> {
    let pooled_at = before
        .get("pooled_at")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(now);
    let text = |key: &str| before.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    let moved = customer::Entity::update_many()
        .col_expr(customer::Column::OwnerUserid, Expr::val(Option::<String>::None))
        .col_expr(customer::Column::OwnerSince, Expr::val(Option::<i64>::None))
        .col_expr(customer::Column::PooledAt, Expr::val(pooled_at))
        .col_expr(customer::Column::PoolReason, Expr::val(text("pool_reason")))
        .col_expr(customer::Column::PreviousOwner, Expr::val(text("previous_owner")))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::OwnerUserid.eq(userid))
        .exec(db)
        .await?;
    if moved.rows_affected != 1 {
        return Ok(false);
    }
    forget_last(db, id, userid, LeadAction::Claimed).await?;
    Ok(true)
}

/// Takes back `userid`'s return of lead `id` to the pool: theirs again, with the clock it had
/// (`before`: the return's audit detail). False when someone claimed it meanwhile.
pub async fn undo_return(
    db: &impl ConnectionTrait,
    id: i64,
    userid: &str,
    before: &serde_json::Value,
    now: i64,
) -> Result<bool, DbErr> {
    let owner_since = before.get("owner_since").and_then(serde_json::Value::as_i64);
    let moved = customer::Entity::update_many()
        .col_expr(customer::Column::OwnerUserid, Expr::val(userid))
        .col_expr(customer::Column::OwnerSince, Expr::val(owner_since))
        .col_expr(customer::Column::PooledAt, Expr::val(Option::<i64>::None))
        .col_expr(customer::Column::PoolReason, Expr::val(Option::<String>::None))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::OwnerUserid.is_null())
        .filter(customer::Column::PooledAt.is_not_null())
        .filter(customer::Column::PreviousOwner.eq(userid))
        .exec(db)
        .await?;
    if moved.rows_affected != 1 {
        return Ok(false);
    }
    forget_last(db, id, userid, LeadAction::Returned).await?;
    Ok(true)
}

/// Removes the latest `action` of `userid` on lead `id` from `lead_assignments`: an undone claim
/// does not count against the day's cap. (The audit log keeps both the change and its undo.)
async fn forget_last(db: &impl ConnectionTrait, id: i64, userid: &str, action: LeadAction) -> Result<(), DbErr> {
    let who = match action {
        LeadAction::Claimed => lead_assignment::Column::Userid,
        _ => lead_assignment::Column::PreviousOwner,
    };
    let last = lead_assignment::Entity::find()
        .filter(lead_assignment::Column::CustomerId.eq(id))
        .filter(lead_assignment::Column::Action.eq(action))
        .filter(who.eq(userid))
        .order_by_desc(lead_assignment::Column::Id)
        .one(db)
        .await?;
    if let Some(last) = last {
        lead_assignment::Entity::delete_by_id(last.id).exec(db).await?;
    }
    Ok(())
}

/// `COALESCE(column, 0)`: a clock never set counts as long ago.
fn or_zero(column: customer::Column) -> Expr {
    Func::coalesce([Expr::col(column), Expr::val(0i64)]).into()
}

/// Owned leads the recycle rules do not exempt whose clock (the latest of `clocks`) is before
/// `threshold`.
fn quiet_since(clocks: [customer::Column; 3], threshold: i64) -> Condition {
    clocks
        .into_iter()
        .fold(Condition::all(), |all, clock| all.add(or_zero(clock).lt(threshold)))
}

/// Leads the recycle rules send back to the pool by `by` (owned, not exempt, quiet long enough);
/// `None` when the rules recycle nothing.
pub fn due_condition(rules: &PoolRules, stages: &[String], by: i64) -> Option<Condition> {
    use customer::Column as C;
    let mut due = Condition::any();
    if rules.recycle_after_days_without_follow_up > 0 {
        let threshold = by - i64::from(rules.recycle_after_days_without_follow_up) * DAY_MS;
        due = due.add(quiet_since([C::LastFollowUpAt, C::OwnerSince, C::CreatedAt], threshold));
    }
    if rules.recycle_after_days_without_stage_move > 0 {
        let threshold = by - i64::from(rules.recycle_after_days_without_stage_move) * DAY_MS;
        due = due.add(quiet_since([C::StageMovedAt, C::OwnerSince, C::CreatedAt], threshold));
    }
    if due.is_empty() {
        return None;
    }
    let mut condition = Condition::all().add(C::OwnerUserid.is_not_null()).add(due);
    if rules.exempt_won && stages.len() >= 2 {
        condition = condition.add(
            Condition::any()
                .add(C::Stage.is_null())
                .add(C::Stage.ne(won_stage(stages))),
        );
    }
    if !rules.exempt_ratings.is_empty() {
        condition = condition.add(
            Condition::any()
                .add(C::Rating.is_null())
                .add(C::Rating.is_not_in(rules.exempt_ratings.iter().cloned())),
        );
    }
    Some(condition)
}

/// Leads whose owner was warned of the recycle in their current quiet spell: the warning came
/// after their last follow-up, stage move and change of owner.
pub fn warned_this_spell() -> Condition {
    use customer::Column as C;
    [C::LastFollowUpAt, C::StageMovedAt, C::OwnerSince]
        .into_iter()
        .fold(Condition::all().add(C::RecycleWarnedAt.is_not_null()), |all, clock| {
            all.add(Expr::col(C::RecycleWarnedAt).gte(or_zero(clock)))
        })
}

/// Leads the recycle sends back at a run starting `today` (the org's midnight): due, and warned
/// in this spell at an earlier run — never without a warning the run before.
pub fn ready_to_recycle(rules: &PoolRules, stages: &[String], now: i64, today: i64) -> Option<Condition> {
    let due = due_condition(rules, stages, now)?;
    Some(
        due.add(warned_this_spell())
            .add(customer::Column::RecycleWarnedAt.lt(today)),
    )
}

/// Leads due by `by` whose owner has not been warned in this spell.
pub fn to_warn(rules: &PoolRules, stages: &[String], by: i64) -> Option<Condition> {
    Some(due_condition(rules, stages, by)?.add(warned_this_spell().not()))
}

/// Leads matching `condition`, in id order, at most `limit`.
pub async fn leads_where(
    db: &impl ConnectionTrait,
    condition: Condition,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    customer::Entity::find()
        .filter(condition)
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Records that the owners of `ids` were warned at `now` (only leads still to warn, `still`).
pub async fn mark_warned(db: &impl ConnectionTrait, ids: &[i64], still: Condition, now: i64) -> Result<u64, DbErr> {
    Ok(customer::Entity::update_many()
        .col_expr(customer::Column::RecycleWarnedAt, Expr::val(now))
        .filter(customer::Column::Id.is_in(ids.iter().copied()))
        .filter(still)
        .exec(db)
        .await?
        .rows_affected)
}

/// When `lead`'s quiet spell for `clock` (its last follow-up or stage move) began: the latest of
/// that, when its owner got it, and when it was created — the instant the recycle rules count from
/// (in SQL: [`due_condition`]).
pub fn quiet_since_ms(lead: &customer::Model, clock: Option<i64>) -> i64 {
    [clock.unwrap_or(0), lead.owner_since.unwrap_or(0), lead.created_at]
        .into_iter()
        .max()
        .unwrap_or(0)
}

/// When the recycle rules send `lead` back to the pool (`None`: they never do).
pub fn recycle_at(rules: &PoolRules, stages: &[String], lead: &customer::Model) -> Option<i64> {
    let exempt_won = rules.exempt_won && stages.len() >= 2 && lead.stage.as_deref() == Some(won_stage(stages));
    let exempt_rating = lead.rating.as_ref().is_some_and(|r| rules.exempt_ratings.contains(r));
    if exempt_won || exempt_rating || lead.owner_userid.is_none() {
        return None;
    }
    let after =
        |days: u32, clock: Option<i64>| (days > 0).then(|| quiet_since_ms(lead, clock) + i64::from(days) * DAY_MS);
    [
        after(rules.recycle_after_days_without_follow_up, lead.last_follow_up_at),
        after(rules.recycle_after_days_without_stage_move, lead.stage_moved_at),
    ]
    .into_iter()
    .flatten()
    .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<String> {
        ["初步接触", "方案报价", "赢单", "输单"].map(String::from).to_vec()
    }

    #[test]
    fn a_lead_is_recycled_from_its_latest_clock_and_exemptions_hold() {
        let rules = PoolRules {
            recycle_after_days_without_follow_up: 30,
            recycle_after_days_without_stage_move: 60,
            ..PoolRules::default()
        };
        let lead = customer::Model {
            owner_userid: Some("rep1".into()),
            created_at: 0,
            last_follow_up_at: Some(10 * DAY_MS),
            ..crate::crm::export::sample_customer()
        };
        assert_eq!(recycle_at(&rules, &stages(), &lead), Some(40 * DAY_MS));
        // A claim restarts the clocks.
        let claimed = customer::Model {
            owner_since: Some(50 * DAY_MS),
            ..lead.clone()
        };
        assert_eq!(recycle_at(&rules, &stages(), &claimed), Some(80 * DAY_MS));
        let stage_first = customer::Model {
            last_follow_up_at: Some(100 * DAY_MS),
            stage_moved_at: Some(5 * DAY_MS),
            ..lead.clone()
        };
        assert_eq!(recycle_at(&rules, &stages(), &stage_first), Some(65 * DAY_MS));
        for exempt in [
            customer::Model {
                stage: Some("赢单".into()),
                ..lead.clone()
            },
            customer::Model {
                rating: Some("A".into()),
                ..lead.clone()
            },
            customer::Model {
                owner_userid: None,
                ..lead.clone()
            },
        ] {
            assert_eq!(recycle_at(&rules, &stages(), &exempt), None);
        }
        let never = PoolRules {
            recycle_after_days_without_follow_up: 0,
            recycle_after_days_without_stage_move: 0,
            ..PoolRules::default()
        };
        assert_eq!(recycle_at(&never, &stages(), &lead), None);
    }
}

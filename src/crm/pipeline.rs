//! Deals (商机): what a customer may buy, for how much, by when, and how far it has come. A
//! customer has any number of deals; the stage it shows is that of its most advanced open deal
//! (else that of its deal closed last). Every stage move is kept (`deal_stages`: who, when, from →
//! to) and audited; moving a deal to the won or lost stage (the last two of `sales.stages`) closes
//! it, moving it back to an open stage opens it again.

use chrono::NaiveDate;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;

use super::audit::{self, Actor};
use super::customers;
use super::money::Amount;
use crate::db::entity::deal::{self, DealStatus};
use crate::db::entity::{customer, deal_stage};

/// Whether a deal in `stage` is open, won or lost.
pub fn status_of(stages: &[String], stage: &str) -> DealStatus {
    if stages.len() >= 2 && stage == won_stage(stages) {
        DealStatus::Won
    } else if !stages.is_empty() && stage == lost_stage(stages) {
        DealStatus::Lost
    } else {
        DealStatus::Open
    }
}

/// The stage that wins a deal: the last but one.
pub fn won_stage(stages: &[String]) -> &str {
    stages.get(stages.len().saturating_sub(2)).map_or("", String::as_str)
}

/// The stage that loses a deal: the last.
pub fn lost_stage(stages: &[String]) -> &str {
    stages.last().map_or("", String::as_str)
}

/// How far a stage is: its place among the stages (an unknown one before the first).
fn rank(stages: &[String], stage: &str) -> i64 {
    stages.iter().position(|s| s == stage).map_or(-1, |i| i as i64)
}

/// A deal about to be made.
#[derive(Debug, Clone)]
pub struct NewDeal {
    pub customer_id: i64,
    pub owner: String,
    pub title: String,
    pub amount: Option<Amount>,
    pub expected_close: Option<NaiveDate>,
    /// `None`: the first stage.
    pub stage: Option<String>,
}

/// Makes a deal, with its first history row, in the audit log; the customer's stage follows.
pub async fn create(
    db: &impl ConnectionTrait,
    stages: &[String],
    new: NewDeal,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let stage = new.stage.unwrap_or_else(|| stages.first().cloned().unwrap_or_default());
    let status = status_of(stages, &stage);
    let stage_before = customer::Entity::find_by_id(new.customer_id)
        .one(db)
        .await?
        .and_then(|c| c.stage);
    let made = deal::ActiveModel {
        customer_id: Set(new.customer_id),
        owner_userid: Set(new.owner.clone()),
        title: Set(new.title),
        amount_fen: Set(new.amount.map(Amount::fen)),
        expected_close: Set(new.expected_close.map(|d| d.to_string())),
        stage: Set(stage.clone()),
        probability: Set(None),
        status: Set(status),
        loss_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        closed_at: Set((status != DealStatus::Open).then_some(now)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    record_move(db, made.id, None, &stage, actor, now).await?;
    audit::record(
        db,
        actor,
        "deal.created",
        Some(made.customer_id),
        Some(&made.owner_userid),
        json!({ "deal_id": made.id, "title": made.title, "amount_fen": made.amount_fen, "stage": stage,
                "customer_stage_before": stage_before }),
    )
    .await?;
    sync_customer_stage(db, stages, made.customer_id, now).await?;
    Ok(made)
}

/// Moves a deal to `to` (closing or reopening it as the stage says); returns it as it is now.
pub async fn move_stage(
    db: &impl ConnectionTrait,
    stages: &[String],
    deal: &deal::Model,
    to: &str,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let moved = apply_move(db, stages, deal, to, actor, now).await?;
    audit::record(
        db,
        actor,
        "deal.stage",
        Some(deal.customer_id),
        Some(&deal.owner_userid),
        json!({ "deal_id": deal.id, "from": deal.stage, "to": to }),
    )
    .await?;
    Ok(moved)
}

/// The move itself, kept in the deal's history (the caller audits it, or it is an `undo`).
async fn apply_move(
    db: &impl ConnectionTrait,
    stages: &[String],
    deal: &deal::Model,
    to: &str,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let status = status_of(stages, to);
    let mut active = deal.clone().into_active_model();
    active.stage = Set(to.to_owned());
    active.status = Set(status);
    active.updated_at = Set(now);
    active.closed_at = Set(match (deal.status, status) {
        (_, DealStatus::Open) => None,
        (DealStatus::Open, _) => Some(now),
        _ => deal.closed_at,
    });
    if status != DealStatus::Lost {
        active.loss_reason = Set(None);
    }
    let moved = active.update(db).await?;
    record_move(db, deal.id, Some(&deal.stage), to, actor, now).await?;
    sync_customer_stage(db, stages, deal.customer_id, now).await?;
    Ok(moved)
}

/// `undo` of a stage move: the deal back in `from`, in its history, without a new audit entry
/// (the `undo` entry says it).
pub async fn undo_move(
    db: &impl ConnectionTrait,
    stages: &[String],
    deal_id: i64,
    from: &str,
    actor: &Actor,
    now: i64,
) -> Result<Option<deal::Model>, DbErr> {
    let Some(deal) = deal::Entity::find_by_id(deal_id).one(db).await? else {
        return Ok(None);
    };
    apply_move(db, stages, &deal, from, actor, now).await.map(Some)
}

/// `undo` of a deal just made: gone, with its history; the customer's stage as before when no
/// other deal says otherwise.
pub async fn undo_create(
    db: &impl ConnectionTrait,
    stages: &[String],
    deal_id: i64,
    customer_stage_before: Option<String>,
    now: i64,
) -> Result<Option<deal::Model>, DbErr> {
    let Some(deal) = deal::Entity::find_by_id(deal_id).one(db).await? else {
        return Ok(None);
    };
    deal_stage::Entity::delete_many()
        .filter(deal_stage::Column::DealId.eq(deal_id))
        .exec(db)
        .await?;
    deal::Entity::delete_by_id(deal_id).exec(db).await?;
    if of_customer(db, deal.customer_id).await?.is_empty() {
        customer::Entity::update_many()
            .col_expr(customer::Column::Stage, Expr::val(customer_stage_before))
            .col_expr(customer::Column::UpdatedAt, Expr::val(now))
            .filter(customer::Column::Id.eq(deal.customer_id))
            .exec(db)
            .await?;
    } else {
        sync_customer_stage(db, stages, deal.customer_id, now).await?;
    }
    Ok(Some(deal))
}

/// What setting a customer's stage did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageSet {
    /// No open deal: one was made in that stage.
    Created(deal::Model),
    /// The one open deal moved (from the stage given).
    Moved { deal: deal::Model, from: String },
    /// Several open deals: nothing changed; which one is meant must be asked.
    Several(Vec<deal::Model>),
}

/// A customer's stage set the way reps say it (`阶段 方案报价`): their only open deal moves; without
/// one a deal is made in that stage (titled after the customer); with several, nothing changes.
pub async fn set_customer_stage(
    db: &impl ConnectionTrait,
    stages: &[String],
    c: &customer::Model,
    stage: &str,
    actor: &Actor,
    owner: &str,
    now: i64,
) -> Result<StageSet, DbErr> {
    let open: Vec<deal::Model> = of_customer(db, c.id)
        .await?
        .into_iter()
        .filter(|d| d.status == DealStatus::Open)
        .collect();
    match open.as_slice() {
        [] => {
            let new = NewDeal {
                customer_id: c.id,
                owner: c.owner_userid.clone().unwrap_or_else(|| owner.to_owned()),
                title: customers::display(c),
                amount: None,
                expected_close: None,
                stage: Some(stage.to_owned()),
            };
            Ok(StageSet::Created(create(db, stages, new, actor, now).await?))
        }
        [one] => {
            let from = one.stage.clone();
            let deal = move_stage(db, stages, one, stage, actor, now).await?;
            Ok(StageSet::Moved { deal, from })
        }
        _ => Ok(StageSet::Several(open)),
    }
}

/// Wins a deal, with its final amount when given.
pub async fn win(
    db: &impl ConnectionTrait,
    stages: &[String],
    deal: &deal::Model,
    amount: Option<Amount>,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let mut current = deal.clone();
    if let Some(amount) = amount
        && current.amount_fen != Some(amount.fen())
    {
        current = set_amount(db, &current, amount, actor, now).await?;
    }
    move_stage(db, stages, &current, won_stage(stages), actor, now).await
}

/// Loses a deal, saying why.
pub async fn lose(
    db: &impl ConnectionTrait,
    stages: &[String],
    deal: &deal::Model,
    reason: &str,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let lost = move_stage(db, stages, deal, lost_stage(stages), actor, now).await?;
    let mut active = lost.into_active_model();
    active.loss_reason = Set(Some(reason.trim().to_owned()));
    active.update(db).await
}

/// Changes to a deal's facts (each `Some` is set; an inner `None` clears it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DealChanges {
    pub title: Option<String>,
    pub amount: Option<Option<Amount>>,
    pub expected_close: Option<Option<NaiveDate>>,
    /// Percent; `Some(None)`: the stage's again.
    pub probability: Option<Option<u8>>,
}

impl DealChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Applies `changes` to a deal, in the audit log with each field's value before and after
/// (`deal.updated`); returns the deal as it is now.
pub async fn update(
    db: &impl ConnectionTrait,
    deal: &deal::Model,
    changes: DealChanges,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let mut active = deal.clone().into_active_model();
    let mut changed = serde_json::Map::new();
    if let Some(title) = changes.title
        && title != deal.title
    {
        changed.insert("title".into(), json!({ "from": deal.title, "to": title }));
        active.title = Set(title);
    }
    if let Some(amount) = changes.amount {
        let fen = amount.map(Amount::fen);
        if fen != deal.amount_fen {
            changed.insert("amount_fen".into(), json!({ "from": deal.amount_fen, "to": fen }));
            active.amount_fen = Set(fen);
        }
    }
    if let Some(close) = changes.expected_close {
        let close = close.map(|d| d.to_string());
        if close != deal.expected_close {
            changed.insert(
                "expected_close".into(),
                json!({ "from": deal.expected_close, "to": close }),
            );
            active.expected_close = Set(close);
        }
    }
    if let Some(p) = changes.probability {
        let p = p.map(|p| i16::from(Ord::min(p, 100)));
        if p != deal.probability {
            changed.insert("probability".into(), json!({ "from": deal.probability, "to": p }));
            active.probability = Set(p);
        }
    }
    if changed.is_empty() {
        return Ok(deal.clone());
    }
    active.updated_at = Set(now);
    let updated = active.update(db).await?;
    audit::record(
        db,
        actor,
        "deal.updated",
        Some(deal.customer_id),
        Some(&deal.owner_userid),
        json!({ "deal_id": deal.id, "changes": changed }),
    )
    .await?;
    Ok(updated)
}

/// Changes a deal's amount, in the audit log.
pub async fn set_amount(
    db: &impl ConnectionTrait,
    deal: &deal::Model,
    amount: Amount,
    actor: &Actor,
    now: i64,
) -> Result<deal::Model, DbErr> {
    let mut active = deal.clone().into_active_model();
    active.amount_fen = Set(Some(amount.fen()));
    active.updated_at = Set(now);
    let changed = active.update(db).await?;
    audit::record(
        db,
        actor,
        "deal.amount",
        Some(deal.customer_id),
        Some(&deal.owner_userid),
        json!({ "deal_id": deal.id, "from": deal.amount_fen, "to": amount.fen() }),
    )
    .await?;
    Ok(changed)
}

async fn record_move(
    db: &impl ConnectionTrait,
    deal_id: i64,
    from: Option<&str>,
    to: &str,
    actor: &Actor,
    at: i64,
) -> Result<(), DbErr> {
    deal_stage::ActiveModel {
        deal_id: Set(deal_id),
        from_stage: Set(from.map(str::to_owned)),
        to_stage: Set(to.to_owned()),
        actor: Set(actor.name()),
        at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The customer's stage: its most advanced open deal's, else that of the deal closed last; a
/// customer without deals keeps what it has.
pub async fn sync_customer_stage(
    db: &impl ConnectionTrait,
    stages: &[String],
    customer_id: i64,
    now: i64,
) -> Result<(), DbErr> {
    let deals = of_customer(db, customer_id).await?;
    let open = deals
        .iter()
        .filter(|d| d.status == DealStatus::Open)
        .max_by_key(|d| rank(stages, &d.stage));
    let shown = open.or_else(|| deals.iter().max_by_key(|d| (d.closed_at.unwrap_or(0), d.id)));
    let Some(shown) = shown else {
        return Ok(());
    };
    customer::Entity::update_many()
        .col_expr(customer::Column::Stage, Expr::val(shown.stage.clone()))
        .col_expr(customer::Column::StageMovedAt, Expr::val(now))
        .col_expr(customer::Column::UpdatedAt, Expr::val(now))
        .filter(customer::Column::Id.eq(customer_id))
        .filter(
            customer::Column::Stage
                .ne(shown.stage.clone())
                .or(customer::Column::Stage.is_null()),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// A customer's deals, open ones first, each in the order they were made.
pub async fn of_customer(db: &impl ConnectionTrait, customer_id: i64) -> Result<Vec<deal::Model>, DbErr> {
    let mut deals = deal::Entity::find()
        .filter(deal::Column::CustomerId.eq(customer_id))
        .order_by_asc(deal::Column::Id)
        .all(db)
        .await?;
    deals.sort_by_key(|d| d.status != DealStatus::Open);
    Ok(deals)
}

/// A member's open deals, the soonest expected close first (undated last).
pub async fn open_of_owner(db: &impl ConnectionTrait, owner: &str) -> Result<Vec<deal::Model>, DbErr> {
    let mut deals = deal::Entity::find()
        .filter(deal::Column::OwnerUserid.eq(owner))
        .filter(deal::Column::Status.eq(DealStatus::Open))
        .order_by_asc(deal::Column::Id)
        .all(db)
        .await?;
    deals.sort_by(|a, b| match (&a.expected_close, &b.expected_close) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(deals)
}

/// A deal's stage moves, oldest first.
pub async fn history(db: &impl ConnectionTrait, deal_id: i64) -> Result<Vec<deal_stage::Model>, DbErr> {
    deal_stage::Entity::find()
        .filter(deal_stage::Column::DealId.eq(deal_id))
        .order_by_asc(deal_stage::Column::At)
        .order_by_asc(deal_stage::Column::Id)
        .all(db)
        .await
}

/// Once per database, whatever the number of instances starting together: the stages customers
/// had before deals existed become deals ([`backfill`]), in one transaction with its run record.
/// Returns how many deals were made (`None`: done before).
pub async fn backfill_once(
    db: &sea_orm::DatabaseConnection,
    config: &crate::config::Config,
    now: i64,
) -> Result<Option<u64>, DbErr> {
    const JOB: &str = "deals_backfill";
    let txn = crate::db::begin_write(db).await?;
    if !crate::db::runs::try_start(&txn, JOB, "all", "1").await? {
        txn.rollback().await?;
        return Ok(None);
    }
    let stages = super::stages::current(&txn, config).await?;
    let made = backfill(&txn, &stages, now).await?;
    let detail = format!("{made} deals from customers' stages");
    crate::db::runs::finish(
        &txn,
        JOB,
        "all",
        "1",
        crate::db::entity::job_run::RunStatus::Done,
        &detail,
    )
    .await?;
    txn.commit().await?;
    Ok(Some(made))
}

/// Turns the stage of every customer that has one but no deal into one deal in that stage (its
/// owner's, titled after the customer, amount unknown). Idempotent; returns how many deals were
/// made.
pub async fn backfill(db: &impl ConnectionTrait, stages: &[String], now: i64) -> Result<u64, DbErr> {
    let with_stage = customer::Entity::find()
        .filter(customer::Column::Stage.is_not_null())
        .order_by_asc(customer::Column::Id)
        .all(db)
        .await?;
    let with_deals: std::collections::HashSet<i64> = deal::Entity::find()
        .select_only()
        .column(deal::Column::CustomerId)
        .distinct()
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut made = 0;
    for c in with_stage {
        let (Some(stage), Some(owner)) = (c.stage.clone(), c.owner_userid.clone()) else {
            continue;
        };
        if with_deals.contains(&c.id) {
            continue;
        }
        let new = NewDeal {
            customer_id: c.id,
            owner,
            title: customers::display(&c),
            amount: None,
            expected_close: None,
            stage: Some(stage),
        };
        create(db, stages, new, &Actor::System, now).await?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_two_stages_close_a_deal() {
        let stages = crate::config::SalesConfig::default().stages;
        assert_eq!(status_of(&stages, "方案报价"), DealStatus::Open);
        assert_eq!(status_of(&stages, "赢单"), DealStatus::Won);
        assert_eq!(status_of(&stages, "输单"), DealStatus::Lost);
        assert_eq!(status_of(&stages, "旧阶段"), DealStatus::Open);
        assert_eq!((won_stage(&stages), lost_stage(&stages)), ("赢单", "输单"));
        assert!(rank(&stages, "商务谈判") > rank(&stages, "初步接触"));
    }
}

//! The customer score (0–100 with the default weights) and its segment, from behaviour:
//!
//! | factor | points |
//! |---|---|
//! | follow-ups | `follow_up_points` for each in the last 90 days, up to `follow_ups` |
//! | recency | `recency` when the latest follow-up is at most `fresh_days` old, none from `stale_days`, linear between |
//! | engagement | `event_points` for each of the customer's own doings seen through callbacks in the last 30 days, up to `engagement` |
//! | stage | open stage *i* of *k*: `stage` × (*i*+1)/(*k*+1); won: `stage`; lost or none: 0 |
//! | rating | A: `rating`; B: two thirds; C: one third |
//! | deals | open deals' amount ÷ `deal_amount_full` × `deals`, at most `deals` |
//!
//! Segments: 风险 (at risk) scores at least `main_from` but has had no follow-up for
//! `at_risk_after_days`; otherwise 重要 (important) from `important_from`, 主要 (main) from
//! `main_from`, else 一般 (normal). The weights are `[scoring]` in the configuration.
//!
//! A customer's score is refreshed as it changes (`refresh_changed`, on the dispatcher's beat) and
//! all of them nightly (`refresh_all`, by id ranges).

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use serde::Serialize;
use tokio::task::JoinSet;

use super::pipeline::{lost_stage, won_stage};
use crate::config::ScoringConfig;
use crate::db::entity::deal::{self, DealStatus};
use crate::db::entity::{audit, customer, follow_up};

const DAY_MS: i64 = 86_400_000;
/// The audit action of a customer moving between segments.
pub const SEGMENT_MOVE: &str = "customer.segment";
/// Follow-ups count from this far back.
const FOLLOW_UP_WINDOW_MS: i64 = 90 * DAY_MS;
/// The customer's own doings count from this far back.
const EVENT_WINDOW_MS: i64 = 30 * DAY_MS;
/// Audit actions that are the customer's own doing, seen through WeCom's callbacks: adding a rep
/// (scanning a code, accepting a request). WeCom sends a self-built app no customer messages
/// without its chat archive, so these are what the service sees of them.
pub const CUSTOMER_EVENTS: [&str; 2] = ["customer.added", "customer.pending"];

/// 重要 / 主要 / 一般 / 风险.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Important,
    Main,
    Normal,
    AtRisk,
}

impl Segment {
    pub const ALL: [Self; 4] = [Self::Important, Self::Main, Self::Normal, Self::AtRisk];

    /// As stored and in the API.
    pub fn key(self) -> &'static str {
        match self {
            Self::Important => "important",
            Self::Main => "main",
            Self::Normal => "normal",
            Self::AtRisk => "at_risk",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// A segment named in either language (`重要`, `important`, `risk` …).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().to_lowercase();
        Self::ALL
            .into_iter()
            .find(|s| s.key() == t || s.label(false) == t || (t == "risk" && *s == Self::AtRisk))
    }

    pub fn label(self, english: bool) -> &'static str {
        match (self, english) {
            (Self::Important, false) => "重要",
            (Self::Main, false) => "主要",
            (Self::Normal, false) => "一般",
            (Self::AtRisk, false) => "风险",
            (Self::Important, true) => "important",
            (Self::Main, true) => "main",
            (Self::Normal, true) => "normal",
            (Self::AtRisk, true) => "at risk",
        }
    }
}

/// What the score is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub follow_ups: u32,
    pub last_follow_up_at: Option<i64>,
    pub events: u32,
    pub stage: Option<String>,
    pub rating: Option<String>,
    /// Open deals' amount, in fen.
    pub open_deal_fen: i64,
    pub created_at: i64,
}

/// One factor's points and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Factor {
    /// follow_ups, recency, engagement, stage, rating, deals.
    pub key: &'static str,
    pub points: u32,
    pub max: u32,
    /// What it counted, in Chinese (`3 条跟进`, `5 天前`).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Score {
    pub total: u32,
    pub segment: Segment,
    pub factors: Vec<Factor>,
}

/// `max` × `part` / `whole`, rounded, at most `max`.
fn share(max: u32, part: i64, whole: i64) -> u32 {
    if whole <= 0 || part <= 0 {
        return 0;
    }
    let points = (i64::from(max) * part + whole / 2) / whole;
    points.clamp(0, i64::from(max)) as u32
}

/// The score of a customer with `inputs` at `now` (pure: the formula in the module doc).
pub fn compute(cfg: &ScoringConfig, stages: &[String], inputs: &Inputs, now: i64) -> Score {
    let mut factors = Vec::with_capacity(6);
    factors.push(Factor {
        key: "follow_ups",
        points: (inputs.follow_ups.saturating_mul(cfg.follow_up_points)).min(cfg.follow_ups),
        max: cfg.follow_ups,
        detail: format!("近 90 天 {} 条跟进", inputs.follow_ups),
    });
    let (recency, recency_detail) = match inputs.last_follow_up_at {
        None => (0, "没有跟进".to_owned()),
        Some(at) => {
            let days = (now - at).max(0) / DAY_MS;
            let (fresh, stale) = (i64::from(cfg.fresh_days), i64::from(cfg.stale_days));
            let points = if days <= fresh {
                cfg.recency
            } else if days >= stale {
                0
            } else {
                share(cfg.recency, stale - days, stale - fresh)
            };
            (points, format!("最近一次跟进在 {days} 天前"))
        }
    };
    factors.push(Factor {
        key: "recency",
        points: recency,
        max: cfg.recency,
        detail: recency_detail,
    });
    factors.push(Factor {
        key: "engagement",
        points: (inputs.events.saturating_mul(cfg.event_points)).min(cfg.engagement),
        max: cfg.engagement,
        detail: format!("近 30 天客户动作 {} 次", inputs.events),
    });
    let open_count = stages.len().saturating_sub(2) as i64;
    let (stage_points, stage_detail) = match inputs.stage.as_deref() {
        None => (0, "未进入阶段".to_owned()),
        Some(s) if stages.len() >= 2 && s == won_stage(stages) => (cfg.stage, format!("{s}（赢单）")),
        Some(s) if !stages.is_empty() && s == lost_stage(stages) => (0, format!("{s}（输单）")),
        Some(s) => match stages.iter().position(|x| x == s) {
            Some(i) => (share(cfg.stage, i as i64 + 1, open_count + 1), s.to_owned()),
            None => (0, format!("{s}（已不在阶段列表中）")),
        },
    };
    factors.push(Factor {
        key: "stage",
        points: stage_points,
        max: cfg.stage,
        detail: stage_detail,
    });
    let rating = match inputs.rating.as_deref() {
        Some("A") => cfg.rating,
        Some("B") => share(cfg.rating, 2, 3),
        Some("C") => share(cfg.rating, 1, 3),
        _ => 0,
    };
    factors.push(Factor {
        key: "rating",
        points: rating,
        max: cfg.rating,
        detail: inputs
            .rating
            .clone()
            .map_or_else(|| "未评级".to_owned(), |r| format!("评级 {r}")),
    });
    let yuan = inputs.open_deal_fen / 100;
    factors.push(Factor {
        key: "deals",
        points: share(cfg.deals, yuan, cfg.deal_amount_full),
        max: cfg.deals,
        detail: format!("进行中商机 {yuan} 元"),
    });
    let total = factors.iter().map(|f| f.points).sum();
    let quiet_days = (now - inputs.last_follow_up_at.unwrap_or(inputs.created_at)).max(0) / DAY_MS;
    let segment = if total >= cfg.main_from && quiet_days >= i64::from(cfg.at_risk_after_days) {
        Segment::AtRisk
    } else if total >= cfg.important_from {
        Segment::Important
    } else if total >= cfg.main_from {
        Segment::Main
    } else {
        Segment::Normal
    };
    Score {
        total,
        segment,
        factors,
    }
}

/// The factor's name in `english` or Chinese.
pub fn factor_label(key: &str, english: bool) -> &'static str {
    match (key, english) {
        ("follow_ups", false) => "跟进次数",
        ("recency", false) => "跟进新鲜度",
        ("engagement", false) => "客户互动",
        ("stage", false) => "销售阶段",
        ("rating", false) => "评级",
        ("deals", false) => "商机金额",
        ("follow_ups", true) => "follow-ups",
        ("recency", true) => "recency",
        ("engagement", true) => "engagement",
        ("stage", true) => "stage",
        ("rating", true) => "rating",
        ("deals", true) => "open deals",
        _ => "",
    }
}

#[derive(Debug, FromQueryResult)]
struct Counted {
    customer_id: i64,
    n: i64,
}

/// Which customers a read is about: an id range (the nightly pass), or a list (the changed ones).
#[derive(Clone, Copy)]
enum Within<'a> {
    Range(i64, i64),
    Ids(&'a [i64]),
}

impl Within<'_> {
    fn condition(self, column: impl ColumnTrait) -> sea_orm::sea_query::SimpleExpr {
        match self {
            Self::Range(from, to) => column.between(from, to),
            Self::Ids(ids) => column.is_in(ids.iter().copied()),
        }
    }
}

/// Counts per customer `within` of what `what` counts, at or after `since`.
async fn counts(
    db: &impl ConnectionTrait,
    what: CountOf,
    within: Within<'_>,
    since: i64,
) -> Result<HashMap<i64, i64>, DbErr> {
    use sea_orm::sea_query::ExprTrait as _;
    let mut q = Query::select();
    match what {
        CountOf::FollowUps => {
            q.column(follow_up::Column::CustomerId)
                .expr_as(Expr::col(follow_up::Column::Id).count(), Alias::new("n"))
                .from(follow_up::Entity)
                .and_where(follow_up::Column::CreatedAt.gte(since))
                .and_where(follow_up::Column::DeletedAt.is_null())
                .group_by_col(follow_up::Column::CustomerId);
            q.and_where(within.condition(follow_up::Column::CustomerId));
        }
        CountOf::Events => {
            q.column(audit::Column::CustomerId)
                .expr_as(Expr::col(audit::Column::Id).count(), Alias::new("n"))
                .from(audit::Entity)
                .and_where(audit::Column::At.gte(since))
                .and_where(audit::Column::Action.is_in(CUSTOMER_EVENTS))
                .and_where(audit::Column::CustomerId.is_not_null())
                .group_by_col(audit::Column::CustomerId);
            q.and_where(within.condition(audit::Column::CustomerId));
        }
        CountOf::OpenDealFen => {
            q.column(deal::Column::CustomerId)
                .expr_as(
                    Expr::cust("CAST(COALESCE(SUM(\"amount_fen\"), 0) AS BIGINT)"),
                    Alias::new("n"),
                )
                .from(deal::Entity)
                .and_where(deal::Column::Status.eq(DealStatus::Open))
                .group_by_col(deal::Column::CustomerId);
            q.and_where(within.condition(deal::Column::CustomerId));
        }
    }
    let builder = db.get_database_backend();
    let rows = Counted::find_by_statement(builder.build(&q)).all(db).await?;
    Ok(rows.into_iter().map(|r| (r.customer_id, r.n)).collect())
}

#[derive(Clone, Copy)]
enum CountOf {
    FollowUps,
    Events,
    OpenDealFen,
}

/// The inputs of `customers` (`within` says which, for the reads) at `now`, read in three grouped
/// queries.
async fn inputs_of(
    db: &impl ConnectionTrait,
    customers: &[customer::Model],
    within: Within<'_>,
    now: i64,
) -> Result<Vec<Inputs>, DbErr> {
    let follow_ups = counts(db, CountOf::FollowUps, within, now - FOLLOW_UP_WINDOW_MS).await?;
    let events = counts(db, CountOf::Events, within, now - EVENT_WINDOW_MS).await?;
    let deals = counts(db, CountOf::OpenDealFen, within, 0).await?;
    Ok(customers
        .iter()
        .map(|c| Inputs {
            follow_ups: follow_ups
                .get(&c.id)
                .copied()
                .unwrap_or(0)
                .clamp(0, i64::from(u32::MAX)) as u32,
            last_follow_up_at: c.last_follow_up_at,
            events: events.get(&c.id).copied().unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
            stage: c.stage.clone(),
            rating: c.rating.clone(),
            open_deal_fen: deals.get(&c.id).copied().unwrap_or(0),
            created_at: c.created_at,
        })
        .collect())
}

/// The score of one customer now, stored if it changed.
pub async fn refresh_one(
    db: &impl ConnectionTrait,
    cfg: &ScoringConfig,
    stages: &[String],
    customer: &customer::Model,
    now: i64,
) -> Result<Score, DbErr> {
    let inputs = inputs_of(db, std::slice::from_ref(customer), Within::Ids(&[customer.id]), now).await?;
    let score = compute(cfg, stages, &inputs[0], now);
    store(db, &[(customer, &score)]).await?;
    Ok(score)
}

/// Writes the scores and segments that changed, in one statement.
async fn store(db: &impl ConnectionTrait, scored: &[(&customer::Model, &Score)]) -> Result<u64, DbErr> {
    let changed: Vec<&(&customer::Model, &Score)> = scored
        .iter()
        .filter(|(c, s)| c.score != s.total as i32 || c.segment.as_deref() != Some(s.segment.key()))
        .collect();
    if changed.is_empty() {
        return Ok(0);
    }
    let values: Vec<String> = changed
        .iter()
        .map(|(c, s)| {
            let was = c.segment.as_deref().map_or("NULL".to_owned(), |w| format!("'{w}'"));
            format!("({}, {}, '{}', {was})", c.id, s.total, s.segment.key())
        })
        .collect();
    // UPDATE … FROM a VALUES list: one statement for the batch on both backends (the values are
    // numbers and fixed segment keys, never user text). A row is written only while its segment is
    // still the one read, and only when something changed: of two instances scoring a customer at
    // once, one writes the move and the other finds nothing to do, so a move is counted once.
    //
    // On PostgreSQL a customer locked by a change in progress (a member's run of chat commands
    // holds several) is skipped rather than waited for: waiting could deadlock with a change that
    // locks the customers in another order. The change moves `updated_at`, so the customer is
    // scored again after it by a later beat, or at the latest by the nightly pass.
    let (free, only_free) = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        (
            ", free AS (SELECT id FROM customers WHERE id IN (SELECT id FROM v) FOR UPDATE SKIP LOCKED)",
            " AND customers.id IN (SELECT id FROM free)",
        )
    } else {
        ("", "")
    };
    let sql = format!(
        "WITH v(id, score, segment, was) AS (VALUES {}){free} \
         UPDATE customers SET score = v.score, segment = v.segment FROM v \
         WHERE customers.id = v.id AND customers.segment IS NOT DISTINCT FROM v.was{only_free} \
         AND (customers.score <> v.score OR customers.segment IS DISTINCT FROM v.segment) \
         RETURNING customers.id",
        values.join(", ")
    );
    let written: std::collections::HashSet<i64> = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .iter()
        .filter_map(|row| row.try_get_by_index::<i64>(0).ok())
        .collect();
    // A move between segments is kept (the managers' summary reports the day's); a first score
    // is not a move.
    let moves: Vec<audit::ActiveModel> = changed
        .iter()
        .filter(|(c, _)| written.contains(&c.id))
        .filter_map(|(c, s)| {
            let from = c.segment.as_deref()?;
            (from != s.segment.key()).then(|| audit::ActiveModel {
                at: sea_orm::Set(crate::db::now_ms()),
                actor: sea_orm::Set("system".into()),
                action: sea_orm::Set(SEGMENT_MOVE.into()),
                customer_id: sea_orm::Set(Some(c.id)),
                member_userid: sea_orm::Set(c.owner_userid.clone()),
                detail: sea_orm::Set(
                    serde_json::json!({ "from": from, "to": s.segment.key(), "score": s.total }).to_string(),
                ),
                ..Default::default()
            })
        })
        .collect();
    for chunk in moves.chunks(500) {
        audit::Entity::insert_many(chunk.to_vec()).exec(db).await?;
    }
    Ok(written.len() as u64)
}

/// What a nightly pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub customers: u64,
    pub changed: u64,
}

/// Customers scored per batch of the nightly pass.
pub const PASS_BATCH: u64 = 5000;

/// Batches of the nightly pass scored side by side: the writes dominate, and PostgreSQL takes
/// them from several connections at once.
const PASS_WORKERS: usize = 4;

/// Recomputes every customer's score and segment, by id ranges ([`PASS_BATCH`] customers each,
/// [`PASS_WORKERS`] at a time); `progress` hears the customers done so far.
pub async fn refresh_all(
    db: &DatabaseConnection,
    cfg: &ScoringConfig,
    stages: &[String],
    now: i64,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<PassReport, DbErr> {
    let mut report = PassReport::default();
    let mut after = 0i64;
    let mut running: JoinSet<Result<(u64, u64), DbErr>> = JoinSet::new();
    let mut finish = |done: Result<Result<(u64, u64), DbErr>, tokio::task::JoinError>,
                      report: &mut PassReport|
     -> Result<(), DbErr> {
        let (customers, changed) = done.map_err(|e| DbErr::Custom(format!("a scoring batch stopped: {e}")))??;
        report.customers += customers;
        report.changed += changed;
        progress(report.customers);
        Ok(())
    };
    loop {
        let batch = customer::Entity::find()
            .filter(customer::Column::Id.gt(after))
            .order_by_asc(customer::Column::Id)
            .limit(PASS_BATCH)
            .all(db)
            .await?;
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            break;
        };
        let range = (first.id, last.id);
        after = last.id;
        let (db, cfg, stages) = (db.clone(), cfg.clone(), stages.to_vec());
        running.spawn(async move {
            let inputs = inputs_of(&db, &batch, Within::Range(range.0, range.1), now).await?;
            let scores: Vec<Score> = inputs.iter().map(|i| compute(&cfg, &stages, i, now)).collect();
            let pairs: Vec<(&customer::Model, &Score)> = batch.iter().zip(scores.iter()).collect();
            let changed = store(&db, &pairs).await?;
            Ok((batch.len() as u64, changed))
        });
        if running.len() >= PASS_WORKERS
            && let Some(done) = running.join_next().await
        {
            finish(done, &mut report)?;
        }
    }
    while let Some(done) = running.join_next().await {
        finish(done, &mut report)?;
    }
    Ok(report)
}

/// Recomputes the customers changed after `after` (their `updated_at`, then id), at most `limit`;
/// returns where the next call starts (`None`: nothing changed).
pub async fn refresh_changed(
    db: &impl ConnectionTrait,
    cfg: &ScoringConfig,
    stages: &[String],
    after: (i64, i64),
    now: i64,
    limit: u64,
) -> Result<Option<(i64, i64)>, DbErr> {
    let (at, id) = after;
    let changed = customer::Entity::find()
        .filter(
            sea_orm::Condition::any().add(customer::Column::UpdatedAt.gt(at)).add(
                sea_orm::Condition::all()
                    .add(customer::Column::UpdatedAt.eq(at))
                    .add(customer::Column::Id.gt(id)),
            ),
        )
        .order_by_asc(customer::Column::UpdatedAt)
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let Some(last) = changed.last().map(|c| (c.updated_at, c.id)) else {
        return Ok(None);
    };
    let ids: Vec<i64> = changed.iter().map(|c| c.id).collect();
    let inputs = inputs_of(db, &changed, Within::Ids(&ids), now).await?;
    let scores: Vec<Score> = inputs.iter().map(|i| compute(cfg, stages, i, now)).collect();
    let pairs: Vec<(&customer::Model, &Score)> = changed.iter().zip(scores.iter()).collect();
    store(db, &pairs).await?;
    Ok(Some(last))
}

/// Customers by segment among `ids`-owning `members`, for the summary: how many in each.
pub async fn segment_counts(db: &impl ConnectionTrait, members: &[String]) -> Result<HashMap<Segment, u64>, DbErr> {
    let rows: Vec<(Option<String>, i64)> = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.is_in(members.iter().cloned()))
        .select_only()
        .column(customer::Column::Segment)
        .column_as(customer::Column::Id.count(), "n")
        .group_by(customer::Column::Segment)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(segment, n)| Some((Segment::from_key(segment.as_deref()?)?, n as u64)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<String> {
        ["初步接触", "需求确认", "方案报价", "商务谈判", "赢单", "输单"]
            .map(String::from)
            .to_vec()
    }

    const NOW: i64 = 1_000 * DAY_MS;

    #[test]
    fn each_factor_follows_the_documented_formula() {
        let cfg = ScoringConfig::default();
        let inputs = Inputs {
            follow_ups: 3,
            last_follow_up_at: Some(NOW - 2 * DAY_MS),
            events: 1,
            stage: Some("方案报价".into()),
            rating: Some("B".into()),
            open_deal_fen: 5_000_000, // 50,000 yuan
            created_at: NOW - 100 * DAY_MS,
        };
        let score = compute(&cfg, &stages(), &inputs, NOW);
        let points: Vec<(&str, u32)> = score.factors.iter().map(|f| (f.key, f.points)).collect();
        assert_eq!(
            points,
            [
                ("follow_ups", 12), // 3 × 4
                ("recency", 20),    // within 3 days
                ("engagement", 5),  // 1 × 5
                ("stage", 15),      // open stage 3 of 4: 25 × 3/5
                ("rating", 10),     // B: 15 × 2/3
                ("deals", 5),       // 50,000 of 100,000: 10 × 1/2
            ]
        );
        assert_eq!(score.total, 67);
        assert_eq!(score.segment, Segment::Main);
    }

    #[test]
    fn caps_decay_and_closed_stages() {
        let cfg = ScoringConfig::default();
        let mut inputs = Inputs {
            follow_ups: 50,
            last_follow_up_at: Some(NOW - 16 * DAY_MS - DAY_MS / 2),
            events: 9,
            stage: Some("赢单".into()),
            rating: Some("A".into()),
            open_deal_fen: 10_000_000_000,
            created_at: 0,
        };
        let score = compute(&cfg, &stages(), &inputs, NOW);
        let get = |s: &Score, key: &str| s.factors.iter().find(|f| f.key == key).unwrap().points;
        assert_eq!(get(&score, "follow_ups"), 20, "capped");
        // 16 days: 20 × (30 − 16) / (30 − 3) = 10.4 → 10.
        assert_eq!(get(&score, "recency"), 10);
        assert_eq!(get(&score, "engagement"), 10, "capped");
        assert_eq!(get(&score, "stage"), 25, "won: all");
        assert_eq!(get(&score, "deals"), 10, "capped");
        assert_eq!(score.total, 90);
        assert_eq!(score.segment, Segment::Important);
        inputs.stage = Some("输单".into());
        inputs.last_follow_up_at = Some(NOW - 40 * DAY_MS);
        let lost = compute(&cfg, &stages(), &inputs, NOW);
        assert_eq!(get(&lost, "stage"), 0);
        assert_eq!(get(&lost, "recency"), 0, "older than stale_days");
        // Still 55 points, but 40 days without a follow-up: at risk.
        assert_eq!(lost.total, 55);
        assert_eq!(lost.segment, Segment::AtRisk);
    }

    #[test]
    fn an_empty_customer_scores_nothing_and_is_normal() {
        let score = compute(&ScoringConfig::default(), &stages(), &Inputs::default(), NOW);
        assert_eq!(score.total, 0);
        assert_eq!(score.segment, Segment::Normal);
        assert_eq!(Segment::parse("风险"), Some(Segment::AtRisk));
        assert_eq!(Segment::parse("Important"), Some(Segment::Important));
    }
}

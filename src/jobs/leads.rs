//! Leads changing hands, told and scheduled: the rep a lead was assigned to hears of it, the rep
//! whose leads were recycled hears which; each morning the recycle rules send rotting leads back
//! to the pool, after warning their owners at the run before.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::bot::replies;
use crate::crm::audit::Actor;
use crate::crm::pool::{self, DAY_MS};
use crate::crm::{customers, score, stages};
use crate::db::begin_write;
use crate::db::entity::lead_assignment::{self, LeadAction};
use crate::db::entity::{customer, job_run::RunStatus};
use crate::db::runs;
use crate::notify;
use crate::services::Services;
use crate::texts::Lang;
use crate::wecom::api::MessageBody;

/// Changes told per round; more wait for the next.
const TELL_BATCH: u64 = 500;
/// Leads listed by name in one message; the rest are counted.
const LISTED: usize = 15;
/// Leads recycled per query.
const RECYCLE_BATCH: u64 = 1000;

/// Tells reps about leads assigned to them and leads recycled from them, one message per rep and
/// kind: the changes are marked told and the message queued in one transaction, so each is told
/// exactly once whatever the number of instances. Returns how many changes were told.
pub async fn tell_changes(s: &Services) -> Result<usize, DbErr> {
    let untold = lead_assignment::Entity::find()
        .filter(lead_assignment::Column::Notified.eq(false))
        .order_by_asc(lead_assignment::Column::Id)
        .limit(TELL_BATCH)
        .all(&s.db)
        .await?;
    let mut by_rep: BTreeMap<(String, bool), Vec<lead_assignment::Model>> = BTreeMap::new();
    for change in untold {
        let (rep, recycled) = match change.action {
            LeadAction::Assigned => (change.userid.clone(), false),
            LeadAction::Recycled => (change.previous_owner.clone(), true),
            _ => (None, false),
        };
        match rep {
            Some(rep) => by_rep.entry((rep, recycled)).or_default().push(change),
            // Nobody to tell: marked told as it is.
            None => by_rep.entry((String::new(), false)).or_default().push(change),
        }
    }
    let mut told = 0;
    for ((rep, recycled), changes) in by_rep {
        let ids: Vec<i64> = changes.iter().map(|c| c.id).collect();
        let txn = begin_write(&s.db).await?;
        let marked = lead_assignment::Entity::update_many()
            .col_expr(lead_assignment::Column::Notified, Expr::val(true))
            .filter(lead_assignment::Column::Id.is_in(ids.clone()))
            .filter(lead_assignment::Column::Notified.eq(false))
            .exec(&txn)
            .await?;
        if marked.rows_affected != ids.len() as u64 {
            // Another instance is telling some of them: it tells them all next round.
            txn.rollback().await?;
            continue;
        }
        if !rep.is_empty() {
            let customer_ids: Vec<i64> = changes.iter().map(|c| c.customer_id).collect();
            let leads = customer::Entity::find()
                .filter(customer::Column::Id.is_in(customer_ids))
                .order_by_asc(customer::Column::Id)
                .all(&txn)
                .await?;
            let lang = crate::bot::language_of(s, &rep).await;
            let text = if recycled {
                recycled_text(&leads, &changes, lang)
            } else {
                assigned_text(s, &leads, &changes, lang)
            };
            let key = format!(
                "leads:{}:{rep}:{}",
                if recycled { "recycled" } else { "assigned" },
                ids[0]
            );
            notify::enqueue(&txn, &key, &rep, &MessageBody::text(text)).await?;
        }
        txn.commit().await?;
        told += ids.len();
    }
    if told > 0 {
        s.notifier.wake();
    }
    Ok(told)
}

fn assigned_text(s: &Services, leads: &[customer::Model], changes: &[lead_assignment::Model], lang: Lang) -> String {
    let reason = changes.iter().find_map(|c| c.reason.clone()).unwrap_or_default();
    let mut lines = vec![if lang.en() {
        format!("📥 {} new lead(s) assigned to you ({reason}):", leads.len())
    } else {
        format!("📥 分配给你 {} 位新线索（{reason}）：", leads.len())
    }];
    for (i, lead) in leads.iter().take(LISTED).enumerate() {
        let mut line = format!("{}. {}", i + 1, customers::display(lead));
        if !lead.phone.is_empty() {
            line.push_str(&format!(" · {}", lead.phone));
        }
        if let Some(url) = s.config.web.customer_url(&lead.external_userid) {
            line.push_str(&format!("\n   {url}"));
        }
        lines.push(line);
    }
    if leads.len() > LISTED {
        lines.push(if lang.en() {
            format!("… and {} more: `find` lists them.", leads.len() - LISTED)
        } else {
            format!("……还有 {} 位，可用「查」找到。", leads.len() - LISTED)
        });
    }
    lines.push(if lang.en() {
        "Follow up soon: leads without follow-up go back to the pool.".into()
    } else {
        "请尽快跟进：长期未跟进的线索会退回公海。".into()
    });
    lines.join("\n")
}

fn recycled_text(leads: &[customer::Model], changes: &[lead_assignment::Model], lang: Lang) -> String {
    let mut lines = vec![if lang.en() {
        format!("♻️ {} lead(s) went back to the pool:", leads.len())
    } else {
        format!("♻️ {} 位客户已退回公海：", leads.len())
    }];
    for (i, lead) in leads.iter().take(LISTED).enumerate() {
        let reason = changes
            .iter()
            .find(|c| c.customer_id == lead.id)
            .and_then(|c| c.reason.clone())
            .unwrap_or_default();
        lines.push(format!("{}. {}（{reason}）", i + 1, customers::display(lead)));
    }
    if leads.len() > LISTED {
        lines.push(format!("… +{}", leads.len() - LISTED));
    }
    lines.push(if lang.en() {
        "`pool` lists the pool; `claim <n>` takes one back (after the cooldown).".into()
    } else {
        "发送「公海」查看公海，「领取 序号」可重新领取（冷静期后）。".into()
    });
    lines.join("\n")
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecycleReport {
    pub recycled: usize,
    /// Owners warned of leads recycled at the next run.
    pub warned: usize,
    pub already_ran: bool,
}

/// The morning pass of the recycle rules: leads due by `now` whose owner was warned at an earlier
/// run go back to the pool (their owners told by [`tell_changes`]); owners of leads due by
/// `next_run` not yet warned in this quiet spell are warned now — so a lead never goes without a
/// warning the run before, and a note after the warning keeps it. Runs once per date across
/// instances; each lead moves in a conditional update, so even overlapping runs move it once.
pub async fn recycle(s: &Services, date: chrono::NaiveDate, now: i64, next_run: i64) -> Result<RecycleReport, DbErr> {
    let period = date.to_string();
    if !runs::try_start(&s.db, "pool_recycle", "", &period).await? {
        return Ok(RecycleReport {
            already_ran: true,
            ..Default::default()
        });
    }
    let rules = pool::rules(&s.db, &s.config).await?.pool;
    let stages = stages::current(&s.db, &s.config).await?;
    let today = crate::texts::date_start(date, s.tz());
    let mut report = RecycleReport::default();
    // Only leads warned at an earlier run go back: the others are warned below and go at the next.
    while let Some(ready) = pool::ready_to_recycle(&rules, &stages, now, today) {
        let due = pool::leads_where(&s.db, ready.clone(), RECYCLE_BATCH).await?;
        if due.is_empty() {
            break;
        }
        let mut moved = 0;
        let mut by_owner: BTreeMap<String, Vec<customer::Model>> = BTreeMap::new();
        for lead in due {
            if let Some(owner) = lead.owner_userid.clone() {
                by_owner.entry(owner).or_default().push(lead);
            }
        }
        for (owner, leads) in by_owner {
            let txn = begin_write(&s.db).await?;
            for lead in &leads {
                let reason = recycle_reason(&rules, lead, now);
                // Still ready when it moves: a note written meanwhile keeps it.
                let from = (Some(owner.as_str()), ready.clone());
                if pool::to_pool_if(&txn, &Actor::System, lead, from, LeadAction::Recycled, &reason, now).await? {
                    moved += 1;
                }
            }
            txn.commit().await?;
        }
        report.recycled += moved;
        if moved == 0 {
            // What is left moved meanwhile (another run, a claim): nothing more to do now.
            break;
        }
    }
    report.warned = warn_owners(s, &rules, &stages, &period, (now, next_run)).await?;
    runs::finish(
        &s.db,
        "pool_recycle",
        "",
        &period,
        RunStatus::Done,
        &format!("{} recycled, {} owners warned", report.recycled, report.warned),
    )
    .await?;
    Ok(report)
}

/// Why the rules recycle `lead` (in Chinese: what the pool and its audit show).
fn recycle_reason(rules: &crate::config::PoolRules, lead: &customer::Model, now: i64) -> String {
    let quiet = |clock: Option<i64>| (now - pool::quiet_since_ms(lead, clock)) / DAY_MS;
    let days = rules.recycle_after_days_without_follow_up;
    if days > 0 && quiet(lead.last_follow_up_at) >= i64::from(days) {
        format!("{} 天未跟进", quiet(lead.last_follow_up_at))
    } else {
        format!("{} 天阶段未推进", quiet(lead.stage_moved_at))
    }
}

/// Warns owners of their leads the rules recycle by `next_run` and that were not warned in this
/// quiet spell: one message per owner, the leads marked warned in the same transaction.
async fn warn_owners(
    s: &Services,
    rules: &crate::config::PoolRules,
    stages: &[String],
    period: &str,
    (now, next_run): (i64, i64),
) -> Result<usize, DbErr> {
    let Some(to_warn) = pool::to_warn(rules, stages, next_run) else {
        return Ok(0);
    };
    let soon = pool::leads_where(&s.db, to_warn.clone(), 100_000).await?;
    let mut by_owner: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for lead in soon {
        if let Some(owner) = lead.owner_userid.clone() {
            by_owner.entry(owner).or_default().push(lead.id);
        }
    }
    let tz = s.tz();
    let mut warned = 0;
    for (owner, ids) in by_owner {
        let txn = begin_write(&s.db).await?;
        pool::mark_warned(&txn, &ids, to_warn.clone(), now).await?;
        // What this transaction marked: a lead followed up meanwhile is left out.
        let leads = customer::Entity::find()
            .filter(customer::Column::Id.is_in(ids.clone()))
            .filter(customer::Column::RecycleWarnedAt.eq(now))
            .filter(customer::Column::OwnerUserid.eq(owner.as_str()))
            .order_by_asc(customer::Column::Id)
            .all(&txn)
            .await?;
        if leads.is_empty() {
            txn.rollback().await?;
            continue;
        }
        let lang = crate::bot::language_of(s, &owner).await;
        let mut lines = vec![if lang.en() {
            format!("⏳ {} lead(s) go back to the pool unless followed up:", leads.len())
        } else {
            format!("⏳ 以下 {} 位客户如不跟进，将退回公海：", leads.len())
        }];
        for (i, lead) in leads.iter().take(LISTED).enumerate() {
            // It goes at the first run at or after its due time, the next one at the earliest.
            let at = pool::recycle_at(rules, stages, lead).unwrap_or(next_run).max(next_run);
            let when = replies::when(at, tz, lang);
            lines.push(format!("{}. {} · {when}", i + 1, customers::display(lead)));
        }
        if leads.len() > LISTED {
            lines.push(format!("… +{}", leads.len() - LISTED));
        }
        lines.push(if lang.en() {
            "A note (`note @name …`) keeps a lead yours.".into()
        } else {
            "记一条跟进（记 @客户 …）即可保留。".into()
        });
        let key = format!("pool_warning:{owner}:{period}:{}", leads[0].id);
        notify::enqueue(&txn, &key, &owner, &MessageBody::text(lines.join("\n"))).await?;
        txn.commit().await?;
        warned += 1;
    }
    if warned > 0 {
        s.notifier.wake();
    }
    Ok(warned)
}

const SCORE_MARK: &str = "score.changed_after";
/// Customers rescored per beat.
const RESCORE_BATCH: u64 = 500;

/// Rescores the customers changed since the last beat (a note, a stage, a rating, an edit …), so
/// a score follows each change within a beat. Returns how many were looked at.
pub async fn refresh_scores(s: &Services) -> Result<usize, DbErr> {
    use crate::db::entity::kv_state;
    let mark = kv_state::Entity::find_by_id(SCORE_MARK.to_owned()).one(&s.db).await?;
    let after = mark
        .and_then(|row| {
            let (at, id) = row.value.split_once(':')?;
            Some((at.parse().ok()?, id.parse().ok()?))
        })
        .unwrap_or((0, 0));
    let stages = stages::current(&s.db, &s.config).await?;
    let now = s.clock.now_ms();
    let Some((at, id)) = score::refresh_changed(&s.db, &s.config.scoring, &stages, after, now, RESCORE_BATCH).await?
    else {
        return Ok(0);
    };
    crate::db::put_state(&s.db, SCORE_MARK, &format!("{at}:{id}"), now).await?;
    Ok(1)
}

/// The nightly pass: every customer's score and segment recomputed, once per date across
/// instances.
pub async fn score_pass(s: &Services, date: chrono::NaiveDate) -> Result<String, DbErr> {
    let period = date.to_string();
    if !runs::try_start(&s.db, "score_pass", "", &period).await? {
        return Ok("already ran".into());
    }
    let stages = stages::current(&s.db, &s.config).await?;
    let started = std::time::Instant::now();
    let report = score::refresh_all(&s.db, &s.config.scoring, &stages, s.clock.now_ms(), &mut |done| {
        if done % 100_000 == 0 {
            tracing::info!(done, "scoring customers");
        }
    })
    .await?;
    let detail = format!(
        "{} customers scored, {} changed, in {} ms",
        report.customers,
        report.changed,
        started.elapsed().as_millis()
    );
    runs::finish(&s.db, "score_pass", "", &period, RunStatus::Done, &detail).await?;
    Ok(detail)
}

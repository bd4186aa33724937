//! The schedule of the periodic jobs: the org sync and reconciliation every interval, the morning
//! agenda and the managers' summary at their time of day. Every instance runs it; run records (or
//! a cache lock for the one-off import) make each run happen once however many instances there are.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use sea_orm::{EntityTrait, PaginatorTrait};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{daily, leads, summary};
use crate::crm::audit::Actor;
use crate::db::entity::customer;
use crate::db::entity::job_run::RunStatus;
use crate::db::now_ms;
use crate::db::runs;
use crate::services::Services;
use crate::sync::{self, Progress};
use crate::telemetry::Chain;
use tracing::Instrument;

/// Starts the periodic jobs; they stop when `shutdown` fires.
pub fn spawn(s: Arc<Services>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    let jobs = s.config.jobs.clone();
    let import_on_empty = jobs.sync_on_empty_start;
    vec![
        tokio::spawn(every(
            s.clone(),
            shutdown.clone(),
            "org_sync",
            jobs.org_sync_interval_secs,
            move |s| {
                Box::pin(async move {
                    let first = import_on_empty && needs_first_import(&s).await;
                    let report = sync::sync_org(&s, &Actor::Sync, &mut log_progress)
                        .await
                        .map_err(|e| Chain(&e).to_string())?;
                    let mut detail = serde_json::to_string(&report).unwrap_or_default();
                    // The first import follows the first org sync, so customers find their members.
                    if first {
                        detail.push_str(&first_import(&s).await);
                    }
                    Ok(detail)
                })
            },
        )),
        tokio::spawn(every(
            s.clone(),
            shutdown.clone(),
            "reconcile",
            jobs.reconcile_interval_secs,
            |s| {
                Box::pin(async move {
                    // Comparing against a database that was never imported would "repair" everything.
                    if needs_first_import(&s).await {
                        return Ok("skipped: the first import has not completed".into());
                    }
                    let report = sync::reconcile(&s).await.map_err(|e| Chain(&e).to_string())?;
                    if report.added + report.reactivated + report.closed > 0 {
                        tracing::info!(?report, "reconciliation repaired customer relations");
                    }
                    Ok(serde_json::to_string(&report).unwrap_or_default())
                })
            },
        )),
        tokio::spawn(daily_at(
            s.clone(),
            shutdown.clone(),
            ("agenda", Days::Workdays),
            jobs.agenda_time.clone(),
            |s, date| {
                Box::pin(async move {
                    // Rotting leads go back to the pool first, so that their nudges and agenda
                    // lines go with them; owners of leads due by the next run are warned.
                    let next_run = next_run_ms(&s);
                    let recycled = leads::recycle(&s, date, now_ms(), next_run)
                        .await
                        .map_err(|e| Chain(&e).to_string())?;
                    // Nudges first: the reminders they create are on the agenda that follows.
                    let stale = daily::nudge_stale(&s, now_ms())
                        .await
                        .map_err(|e| Chain(&e).to_string())?;
                    let agenda = daily::send_agenda(&s, date, now_ms())
                        .await
                        .map_err(|e| Chain(&e).to_string())?;
                    let slipping = crate::report::pipeline::large_deals_slipping(&s, date)
                        .await
                        .map_err(|e| Chain(&e).to_string())?;
                    Ok(format!(
                        "pool {recycled:?}, stale {stale:?}, agenda {agenda:?}, large deals slipping {slipping}"
                    ))
                })
            },
        )),
        tokio::spawn(daily_at(
            s.clone(),
            shutdown.clone(),
            ("scores", Days::Every),
            jobs.score_time.clone(),
            |s, date| Box::pin(async move { leads::score_pass(&s, date).await.map_err(|e| Chain(&e).to_string()) }),
        )),
        tokio::spawn(daily_at(
            s,
            shutdown,
            ("summary", Days::Workdays),
            jobs.summary_time.clone(),
            |s, date| {
                Box::pin(async move {
                    let report = summary::send(&s, date, None, now_ms())
                        .await
                        .map_err(|e| Chain(&e).to_string())?;
                    Ok(format!(
                        "sent to {} recipient(s), {} already had it",
                        report.sent.len(),
                        report.already_sent.len()
                    ))
                })
            },
        )),
    ]
}

/// The days a daily job runs: the messages on `jobs.workdays`, the nightly work every day.
#[derive(Debug, Clone, Copy)]
enum Days {
    Workdays,
    Every,
}

type DailyJob = Box<dyn Fn(Arc<Services>, NaiveDate) -> JobFuture + Send + Sync>;

/// Runs `job` once a day at `time` (org timezone) on the configured workdays — and at start when
/// today's time has already passed, so a restart does not skip the day. The job records what it
/// did per recipient, which makes the runs of several instances add up to one.
async fn daily_at(
    s: Arc<Services>,
    shutdown: CancellationToken,
    (name, days): (&'static str, Days),
    time: String,
    job: impl Fn(Arc<Services>, NaiveDate) -> JobFuture + Send + Sync + 'static,
) {
    let job: DailyJob = Box::new(job);
    let Some(time) = crate::config::JobsConfig::time_of(&time) else {
        tracing::error!(job = name, time, "not a time of day; the job is off");
        return;
    };
    let workdays = match days {
        Days::Workdays => s.config.jobs.workdays.clone(),
        Days::Every => (1..=7).collect(),
    };
    let mut done: Option<NaiveDate> = None;
    loop {
        let local = local_now(&s);
        if is_due(local, time, &workdays) && done != Some(local.date()) {
            let span = tracing::info_span!("job_run", job = name, period = %local.date());
            match job(s.clone(), local.date()).instrument(span).await {
                Ok(detail) => {
                    tracing::info!(job = name, date = %local.date(), detail, "daily job done");
                    done = Some(local.date());
                }
                Err(error) => tracing::warn!(job = name, %error, "daily job failed; retrying in a minute"),
            }
        }
        let local = local_now(&s);
        let until_next = (next_occurrence(local, time, &workdays) - local)
            .to_std()
            .unwrap_or_default();
        // Wake at least every minute: clock changes and failed runs are picked up without drift.
        let wait = until_next.min(Duration::from_secs(60)) + Duration::from_millis(rand::random::<u64>() % 1000);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// When the morning run (`jobs.agenda_time` on a workday) comes next, as an instant.
fn next_run_ms(s: &Services) -> i64 {
    let time = crate::config::JobsConfig::time_of(&s.config.jobs.agenda_time).unwrap_or_default();
    let next = next_occurrence(local_now(s), time, &s.config.jobs.workdays);
    crate::texts::local_instant(next, s.tz()).map_or_else(|| now_ms() + 86_400_000, |t| t.timestamp_millis())
}

fn local_now(s: &Services) -> NaiveDateTime {
    let tz = s.tz();
    tz.from_utc_datetime(&chrono::Utc::now().naive_utc()).naive_local()
}

fn is_workday(date: NaiveDate, workdays: &[u32]) -> bool {
    workdays.contains(&date.weekday().number_from_monday())
}

/// Whether today's run is due: a workday, at or past the time.
fn is_due(now: NaiveDateTime, time: NaiveTime, workdays: &[u32]) -> bool {
    is_workday(now.date(), workdays) && now.time() >= time
}

/// The next workday moment at `time` strictly after `now` (a week ahead when there are no workdays).
fn next_occurrence(now: NaiveDateTime, time: NaiveTime, workdays: &[u32]) -> NaiveDateTime {
    (0..=7)
        .map(|d| (now.date() + chrono::Duration::days(d)).and_time(time))
        .find(|t| *t > now && is_workday(t.date(), workdays))
        .unwrap_or(now + chrono::Duration::days(7))
}

type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>;

/// Runs `job` once per `interval_secs` period across all instances: the period's run record is
/// taken by the first instance to get there.
async fn every(
    s: Arc<Services>,
    shutdown: CancellationToken,
    name: &'static str,
    interval_secs: u64,
    job: impl Fn(Arc<Services>) -> JobFuture,
) {
    let interval = interval_secs.max(60);
    loop {
        let now = now_ms() / 1000;
        let period = (now / interval as i64).to_string();
        match runs::try_start(&s.db, name, "", &period).await {
            Ok(true) => {
                tracing::info!(job = name, "job started");
                let span = tracing::info_span!("job_run", job = name, period = %period);
                let (status, detail) = match job(s.clone()).instrument(span).await {
                    Ok(detail) => (RunStatus::Done, detail),
                    Err(error) => {
                        tracing::warn!(job = name, %error, "job failed; the next period runs it again");
                        (RunStatus::Failed, error)
                    }
                };
                if let Err(e) = runs::finish(&s.db, name, "", &period, status, &detail).await {
                    tracing::warn!(job = name, error = %e, "could not record the job's end");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(job = name, error = %e, "job schedule cannot reach the database"),
        }
        let next_period_in = interval as i64 - (now_ms() / 1000) % interval as i64;
        // A little jitter so instances do not hit the database in the same millisecond.
        let wait =
            Duration::from_secs(next_period_in.max(1) as u64) + Duration::from_millis(rand::random::<u64>() % 2000);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn needs_first_import(s: &Services) -> bool {
    let empty = customer::Entity::find()
        .count(&s.db)
        .await
        .map(|n| n == 0)
        .unwrap_or(false);
    empty || sync::customer_sync_interrupted(s).await.unwrap_or(false)
}

/// The import of every customer on a fresh database (or one whose import was interrupted).
async fn first_import(s: &Services) -> String {
    let lock = match s.cache.try_lock("first-import", Duration::from_secs(3600)).await {
        Ok(Some(lock)) => lock,
        _ => return String::new(),
    };
    tracing::info!("importing every customer from WeCom (first start)");
    let detail = match sync::sync_customers(s, &mut log_progress).await {
        Ok(report) => {
            tracing::info!(?report, "customer import finished");
            format!(" import: {}", serde_json::to_string(&report).unwrap_or_default())
        }
        Err(e) => {
            tracing::warn!(error = %e, "customer import interrupted; it resumes at the next start or `wecom-scrm sync`");
            format!(" import failed: {e}")
        }
    };
    let _ = s.cache.unlock(lock).await;
    detail
}

fn log_progress(progress: Progress) {
    tracing::info!(?progress, "sync progress");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn daily_jobs_run_on_workdays_at_their_time() {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let weekdays = [1, 2, 3, 4, 5];
        // 2026-11-20 is a Friday.
        assert!(!is_due(at("2026-11-20 08:59"), nine, &weekdays));
        assert!(is_due(at("2026-11-20 09:00"), nine, &weekdays));
        assert!(
            is_due(at("2026-11-20 17:00"), nine, &weekdays),
            "a late start catches up the same day"
        );
        assert!(!is_due(at("2026-11-21 10:00"), nine, &weekdays), "Saturday is off");
        assert_eq!(
            next_occurrence(at("2026-11-20 08:00"), nine, &weekdays),
            at("2026-11-20 09:00")
        );
        assert_eq!(
            next_occurrence(at("2026-11-20 09:00"), nine, &weekdays),
            at("2026-11-23 09:00")
        );
        assert_eq!(
            next_occurrence(at("2026-11-21 12:00"), nine, &[6]),
            at("2026-11-28 09:00")
        );
        assert_eq!(
            next_occurrence(at("2026-11-21 12:00"), nine, &[]),
            at("2026-11-28 12:00")
        );
    }
}

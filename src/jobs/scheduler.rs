//! The schedule of the periodic jobs. Every instance runs it; a run record per period (or a cache
//! lock for the one-off import) makes each run happen once however many instances there are.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{EntityTrait, PaginatorTrait};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::runs;
use crate::crm::audit::Actor;
use crate::crm::sync::{self, Progress};
use crate::db::entity::customer;
use crate::db::now_ms;
use crate::services::Services;

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
                        .map_err(|e| e.to_string())?;
                    let mut detail = serde_json::to_string(&report).unwrap_or_default();
                    // The first import follows the first org sync, so customers find their members.
                    if first {
                        detail.push_str(&first_import(&s).await);
                    }
                    Ok(detail)
                })
            },
        )),
        tokio::spawn(every(s, shutdown, "reconcile", jobs.reconcile_interval_secs, |s| {
            Box::pin(async move {
                // Comparing against a database that was never imported would "repair" everything.
                if needs_first_import(&s).await {
                    return Ok("skipped: the first import has not completed".into());
                }
                let report = sync::reconcile(&s).await.map_err(|e| e.to_string())?;
                if report.added + report.reactivated + report.closed > 0 {
                    tracing::info!(?report, "reconciliation repaired customer relations");
                }
                Ok(serde_json::to_string(&report).unwrap_or_default())
            })
        })),
    ]
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
                let (status, detail) = match job(s.clone()).await {
                    Ok(detail) => ("done", detail),
                    Err(error) => {
                        tracing::warn!(job = name, %error, "job failed; the next period runs it again");
                        ("failed", error)
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

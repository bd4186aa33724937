//! Liveness and readiness for orchestrators and load balancers.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    status: &'static str,
    database: String,
    cache: String,
    /// The reminder dispatcher, when this instance pushes reminders.
    #[serde(skip_serializing_if = "Option::is_none")]
    dispatcher: Option<String>,
}

/// 200 when the database and the cache both answer; 503 naming the one that did not.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (database, cache) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, crate::db::ping(&state.db)),
        tokio::time::timeout(CHECK_TIMEOUT, state.cache.ping()),
    );
    let database = match database {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(_) => Err("error: no answer within 2s".to_owned()),
    };
    let cache = match cache {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(_) => Err("error: no answer within 2s".to_owned()),
    };
    let jobs = &state.config.jobs;
    let dispatcher = jobs.push_reminders.then(|| {
        let idle = state.services.metrics.dispatcher_idle_secs();
        if idle > jobs.stale_after_secs as i64 {
            Err(format!("error: no round completed for {idle}s"))
        } else {
            Ok(())
        }
    });
    let dispatcher_ok = dispatcher.as_ref().is_none_or(Result::is_ok);
    let ready = database.is_ok() && cache.is_ok() && dispatcher_ok;
    let readiness = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        database: database.err().unwrap_or_else(|| "ok".into()),
        cache: cache.err().unwrap_or_else(|| "ok".into()),
        dispatcher: dispatcher.map(|d| d.err().unwrap_or_else(|| "ok".into())),
    };
    if !ready {
        tracing::warn!(database = %readiness.database, cache = %readiness.cache, dispatcher = ?readiness.dispatcher, "not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// OpenMetrics text: reminders due, sent, failed and lagging, the outbox and the inbox.
pub async fn metrics(
    State(state): State<AppState>,
) -> Result<(StatusCode, [(&'static str, &'static str); 1], String), StatusCode> {
    match state.services.metrics.render(&state.db).await {
        Ok(text) => Ok((
            StatusCode::OK,
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )),
        Err(e) => {
            tracing::warn!(error = %e, "metrics unavailable");
            Err(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

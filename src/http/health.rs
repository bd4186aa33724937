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
    let ready = database.is_ok() && cache.is_ok();
    let readiness = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        database: database.err().unwrap_or_else(|| "ok".into()),
        cache: cache.err().unwrap_or_else(|| "ok".into()),
    };
    if !ready {
        tracing::warn!(database = %readiness.database, cache = %readiness.cache, "not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

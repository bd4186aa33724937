//! The fake's HTTP surface: WeCom's `/cgi-bin/…` API, and `/_fake/…` endpoints to inspect and steer
//! a standalone fake (`wecom-scrm fake-wecom`) from outside.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::state::{Answer, Refusal, State};
use super::{Delivery, FaultKind, SentMessage};

#[derive(Clone)]
pub struct Shared {
    pub state: Arc<Mutex<State>>,
    pub feed: broadcast::Sender<Delivery>,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/cgi-bin/{*call}", get(api).post(api))
        .route("/_fake/messages", get(messages))
        .route("/_fake/calls", get(calls))
        .route("/_fake/faults", post(add_fault))
        .route("/_fake/expire_tokens", post(expire_tokens))
        .route("/_fake/delay", post(set_delay))
        .route("/connect/oauth2/authorize", get(super::web::authorize))
        .route("/_fake/open", get(super::web::open))
        .route("/_fake/ww.js", get(super::web::ww_script))
        .route("/_fake/jssdk/check", post(super::web::check_signature))
        .with_state(shared)
}

fn answer(result: Answer) -> Response {
    let body = match result {
        Ok(mut value) => {
            if let Some(object) = value.as_object_mut() {
                object.insert("errcode".into(), json!(0));
                object.insert("errmsg".into(), json!("ok"));
            }
            value
        }
        Err(Refusal { code, message }) => json!({ "errcode": code, "errmsg": message }),
    };
    Json(body).into_response()
}

async fn api(
    Extract(shared): Extract<Shared>,
    Path(call): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let delay = {
        let mut state = shared.lock();
        *state.calls.entry(call.clone()).or_default() += 1;
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        state.delay
    };
    // Counted out however this request ends (including a client that hangs up mid-delay).
    let _in_flight = InFlight(shared.clone());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => Some(value),
            Err(_) => {
                return answer(Err(Refusal {
                    code: 47001,
                    message: "data format error".into(),
                }));
            }
        }
    };
    let mut state = shared.lock();
    match state.take_fault(&call) {
        Some(FaultKind::Http(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "injected fault").into_response();
        }
        Some(FaultKind::Errcode(code)) => {
            return answer(Err(Refusal {
                code,
                message: "injected fault".into(),
            }));
        }
        None => {}
    }
    if call == "gettoken" {
        return answer(state.gettoken(&query));
    }
    if let Err(refusal) = state.check_token(&query) {
        return answer(Err(refusal));
    }
    let (messages_before, welcomes_before) = (state.messages.len(), state.welcomes.len());
    let result = state.handle(&call, &query, body);
    for message in &state.messages[messages_before..] {
        let _ = shared.feed.send(Delivery::Message(message.clone()));
    }
    for welcome in &state.welcomes[welcomes_before..] {
        let _ = shared.feed.send(Delivery::Welcome(welcome.clone()));
    }
    answer(result)
}

struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

async fn messages(Extract(shared): Extract<Shared>) -> Json<Vec<SentMessage>> {
    Json(shared.lock().messages.clone())
}

async fn calls(Extract(shared): Extract<Shared>) -> Json<HashMap<String, u32>> {
    Json(shared.lock().calls.clone())
}

#[derive(Deserialize)]
struct FaultRequest {
    call: Option<String>,
    #[serde(flatten)]
    kind: FaultKind,
    count: u32,
}

async fn add_fault(Extract(shared): Extract<Shared>, Json(request): Json<FaultRequest>) -> StatusCode {
    shared.lock().add_fault(request.call, request.kind, request.count);
    StatusCode::NO_CONTENT
}

async fn expire_tokens(Extract(shared): Extract<Shared>) -> StatusCode {
    shared.lock().expire_tokens();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct DelayRequest {
    ms: u64,
}

async fn set_delay(Extract(shared): Extract<Shared>, Json(request): Json<DelayRequest>) -> StatusCode {
    shared.lock().delay = Duration::from_millis(request.ms);
    StatusCode::NO_CONTENT
}

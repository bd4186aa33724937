//! `/wecom/callback`: URL verification (GET) and message/event delivery (POST). The handlers are
//! thin: verify, decrypt and parse with `wecom`, store with `inbox`, answer. The answer to a POST is
//! sent only after the callback is durably stored, so WeCom retries anything we did not keep.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use crate::db::entity::inbox;
use crate::inbox::{NewCallback, StoreError, StoreOutcome};
use crate::wecom::callback::{Callback, CallbackKind, parse_callback, parse_envelope};
use crate::wecom::compose::{XmlBuilder, update_button_reply};
use crate::wecom::crypto::CryptoError;

/// WeCom gives up after 5 s; answer 503 well before that rather than let it time out.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Deserialize)]
pub struct SignatureQuery {
    msg_signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    echostr: Option<String>,
}

struct Signed<'a> {
    signature: &'a str,
    timestamp: &'a str,
    nonce: &'a str,
}

impl SignatureQuery {
    fn signed(&self) -> Result<Signed<'_>, ApiError> {
        match (&self.msg_signature, &self.timestamp, &self.nonce) {
            (Some(signature), Some(timestamp), Some(nonce)) if !signature.is_empty() => Ok(Signed {
                signature,
                timestamp,
                nonce,
            }),
            _ => Err(ApiError::MissingSignature),
        }
    }
}

fn check_timestamp(state: &AppState, timestamp: &str) -> Result<(), ApiError> {
    let max_age = state.config.wecom.max_timestamp_age_secs;
    if max_age == 0 {
        return Ok(());
    }
    let ts: i64 = timestamp.trim().parse().map_err(|_| ApiError::StaleTimestamp)?;
    let now = chrono::Utc::now().timestamp();
    if now.abs_diff(ts) > max_age {
        return Err(ApiError::StaleTimestamp);
    }
    Ok(())
}

fn crypto_error(e: CryptoError) -> ApiError {
    match e {
        CryptoError::Signature => ApiError::BadSignature,
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// URL verification: answer the decrypted `echostr` exactly, as plain text.
pub async fn verify_url(
    State(state): State<AppState>,
    Query(query): Query<SignatureQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let signed = query.signed()?;
    let echostr = query
        .echostr
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing echostr".into()))?;
    check_timestamp(&state, signed.timestamp)?;
    let crypto = &state.crypto;
    let plain = match crypto.verify_and_decrypt(signed.signature, signed.timestamp, signed.nonce, echostr) {
        // A `+` that reached a form decoder unencoded arrives as a space; try it the way it was meant.
        Err(CryptoError::Signature) if echostr.contains(' ') => {
            let restored = echostr.replace(' ', "+");
            crypto.verify_and_decrypt(signed.signature, signed.timestamp, signed.nonce, &restored)
        }
        other => other,
    }
    .map_err(crypto_error)?;
    tracing::info!("callback URL verified");
    Ok((StatusCode::OK, [("content-type", "text/plain; charset=utf-8")], plain))
}

/// Message and event delivery: verify, decrypt, parse, store, then 200 with an empty body.
pub async fn receive(
    State(state): State<AppState>,
    Query(query): Query<SignatureQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(super::CALLBACK_BODY_LIMIT)
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    })?;
    let signed = query.signed()?;
    check_timestamp(&state, signed.timestamp)?;
    let body = std::str::from_utf8(&body).map_err(|_| ApiError::BadRequest("body is not UTF-8".into()))?;
    let envelope = parse_envelope(body).map_err(|e| ApiError::BadRequest(format!("envelope: {e}")))?;
    let plain = state
        .crypto
        .verify_and_decrypt(signed.signature, signed.timestamp, signed.nonce, &envelope.encrypt)
        .map_err(crypto_error)?;
    let callback = parse_callback(&plain).map_err(|e| ApiError::BadRequest(format!("message: {e}")))?;
    let row = NewCallback::new(&callback, plain);
    let (kind, key) = (row.kind.clone(), row.dedupe_key.clone());
    // A chat message (or a card click) waits briefly for its answer, to return it in this very
    // response.
    let answers = &state.services.answers;
    let is_chat = matches!(callback.kind, CallbackKind::Text { .. } | CallbackKind::CardClick(_));
    let waiter = is_chat.then(|| answers.wait_for(&key)).flatten();
    let stored = tokio::time::timeout(STORE_TIMEOUT, state.inbox.store(row))
        .await
        .map_err(|_| ApiError::Unavailable("database did not answer in time".into()))
        .and_then(|r| {
            r.map_err(|e| match e {
                StoreError::Unavailable(e) => ApiError::Unavailable(e),
                StoreError::Stopped => ApiError::Unavailable("shutting down".into()),
            })
        });
    let outcome = match stored {
        Ok(outcome) => outcome,
        Err(e) => {
            answers.forget(&key);
            return Err(e);
        }
    };
    let answer = match outcome {
        StoreOutcome::Stored(id) => {
            tracing::info!(id, kind = %kind, "callback stored");
            state.services.metrics.callbacks_stored.inc_by(1);
            match waiter {
                Some(rx) => await_answer(&state, &key, rx).await,
                None => None,
            }
        }
        StoreOutcome::Duplicate => {
            tracing::info!(kind = %kind, "callback already stored (WeCom retry)");
            state.services.metrics.callbacks_duplicate.inc_by(1);
            if waiter.is_some() {
                answers.forget(&key);
            }
            // Only a chat message or a card click can have been answered in its response.
            if is_chat {
                stored_passive_reply(&state, &key).await
            } else {
                None
            }
        }
    };
    Ok(match answer {
        Some(text) => passive_reply(&state, &callback, &text).into_response(),
        None => StatusCode::OK.into_response(),
    })
}

/// The answer an earlier delivery carried in its response (which WeCom may not have received), to
/// carry again. An answer just written may not have its delivery mode recorded yet: wait for it
/// briefly rather than answer twice (passively and through the message API) or not at all.
async fn stored_passive_reply(state: &AppState, key: &str) -> Option<String> {
    for _ in 0..40 {
        let row = inbox::Entity::find()
            .filter(inbox::Column::DedupeKey.eq(key))
            .one(&state.db)
            .await
            .ok()
            .flatten()?;
        match (row.reply, row.reply_mode.as_deref()) {
            (Some(reply), Some("passive")) => return Some(reply),
            (Some(_), None) => tokio::time::sleep(Duration::from_millis(25)).await,
            _ => return None,
        }
    }
    None
}

/// The answer, if it comes within the budget. Past the budget the answer is refused here (and goes
/// through the message API instead); an answer that arrived just as time ran out is still used.
async fn await_answer(
    state: &AppState,
    key: &str,
    mut rx: tokio::sync::oneshot::Receiver<Option<String>>,
) -> Option<String> {
    let budget = Duration::from_millis(state.config.bot.reply_budget_ms);
    let started = std::time::Instant::now();
    let answer = match tokio::time::timeout(budget, &mut rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => None,
        Err(_) => stop_waiting(state, key, rx),
    };
    tracing::debug!(
        waited_ms = started.elapsed().as_millis() as u64,
        answered = answer.is_some(),
        "waited for the answer"
    );
    answer
}

/// Gives up waiting; an answer handed over before this is still used (it would go nowhere else).
fn stop_waiting(state: &AppState, key: &str, mut rx: tokio::sync::oneshot::Receiver<Option<String>>) -> Option<String> {
    rx.close();
    state.services.answers.forget(key);
    rx.try_recv().ok().flatten()
}

/// The encrypted passive reply carrying `text` to the member who wrote: a text message, or for a
/// card click the clicked card's buttons replaced by `text`.
fn passive_reply(state: &AppState, callback: &Callback, text: &str) -> impl IntoResponse {
    let now = chrono::Utc::now().timestamp();
    let inner = if let CallbackKind::CardClick(_) = callback.kind {
        update_button_reply(&callback.from_user, state.crypto.receive_id(), text, now)
    } else {
        XmlBuilder::new()
            .text("ToUserName", &callback.from_user)
            .text("FromUserName", state.crypto.receive_id())
            .number("CreateTime", now)
            .text("MsgType", "text")
            .text("Content", text)
            .finish()
    };
    let nonce = rand::random::<u32>().to_string();
    let body = state
        .crypto
        .encrypt_reply_with_random(&inner, &now.to_string(), &nonce, &rand::random());
    (
        StatusCode::OK,
        [("content-type", "application/xml; charset=utf-8")],
        body,
    )
}

//! The access token (and, through the same single flight, the JS-SDK tickets): cached in the cache
//! layer, fetched by one caller at a time — a mutex within the process, a short cache lock across
//! instances (the others wait and re-read) — and dropped when WeCom rejects it.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};

use super::error::codes;
use super::types::TokenResponse;
use super::{WecomClient, WecomError, backoff, decode, transport};

/// How long the cross-instance fetch lock is held at most, and how long others wait for its result.
const FETCH_LOCK_TTL: Duration = Duration::from_secs(10);
const WAIT_FOR_OTHER_FETCH: Duration = Duration::from_secs(5);

/// Tokens belong to one app secret: the key includes a digest of it, so a changed secret never
/// reuses the old app's token (and the secret itself is never stored).
pub(super) fn cache_key(corp_id: &str, agent_id: i64, secret: &SecretString) -> String {
    let digest = Sha1::digest(secret.expose_secret().as_bytes());
    let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("wecom:access_token:{}:{agent_id}:{short}", corp_id.trim())
}

impl WecomClient {
    /// A valid access token, from the cache or freshly fetched.
    pub async fn token(&self) -> Result<String, WecomError> {
        let key = self.inner.token_key.clone();
        self.single_flight(&key, &self.inner.refresh, || self.fetch_token())
            .await
    }

    /// A credential kept in the cache under `key` (the access token, a JS-SDK ticket), fetched by
    /// one caller at a time: `local` within the process, a short cache lock across instances (the
    /// others wait and re-read). It is kept for WeCom's lifetime less the refresh margin.
    pub(super) async fn single_flight<F, Fut>(
        &self,
        key: &str,
        local: &tokio::sync::Mutex<()>,
        fetch: F,
    ) -> Result<String, WecomError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(String, u64), WecomError>>,
    {
        if let Some(value) = self.cached(key).await {
            return Ok(value);
        }
        let _single_flight = local.lock().await;
        if let Some(value) = self.cached(key).await {
            return Ok(value);
        }
        let lock_name = format!("{key}:fetch");
        match self.inner.cache.try_lock(&lock_name, FETCH_LOCK_TTL).await {
            Ok(Some(lock)) => {
                // Another instance may have stored one between our read and taking the lock (its
                // fetch finished and released the lock in between).
                let fetched = match self.cached(key).await {
                    Some(value) => Ok(value),
                    None => self.fetch_and_store(key, &fetch).await,
                };
                let _ = self.inner.cache.unlock(lock).await;
                fetched
            }
            Ok(None) => {
                // Another instance is fetching: wait for its result, or fetch ourselves if it died.
                let deadline = Instant::now() + WAIT_FOR_OTHER_FETCH;
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(value) = self.cached(key).await {
                        return Ok(value);
                    }
                }
                self.fetch_and_store(key, &fetch).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "credential lock unavailable; fetching without it");
                self.fetch_and_store(key, &fetch).await
            }
        }
    }

    async fn cached(&self, key: &str) -> Option<String> {
        match self.inner.cache.get(key).await {
            Ok(value) => value.filter(|v| !v.is_empty()),
            Err(e) => {
                tracing::warn!(error = %e, "credential cache unavailable");
                None
            }
        }
    }

    /// Drops a token WeCom rejected — only if it is still the cached one, so a fresh token another
    /// caller just stored survives.
    pub(super) async fn invalidate_token(&self, token: &str) {
        if let Err(e) = self.inner.cache.delete_if_equals(&self.inner.token_key, token).await {
            tracing::warn!(error = %e, "could not drop a rejected token");
        }
    }

    async fn fetch_and_store<F, Fut>(&self, key: &str, fetch: &F) -> Result<String, WecomError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(String, u64), WecomError>>,
    {
        let (value, expires_in) = fetch().await?;
        let margin = self.inner.settings.token_refresh_margin;
        let lifetime = Duration::from_secs(expires_in);
        let ttl = if lifetime > margin * 2 {
            lifetime - margin
        } else {
            lifetime / 2
        };
        if let Err(e) = self.inner.cache.set(key, &value, ttl.max(Duration::from_secs(1))).await {
            tracing::warn!(error = %e, "could not cache a fetched credential");
        }
        Ok(value)
    }

    /// `gettoken`, retried only while WeCom is busy. Any other refusal is a configuration error and
    /// is reported, never retried in a loop.
    async fn fetch_token(&self) -> Result<(String, u64), WecomError> {
        const CALL: &str = "gettoken";
        let settings = &self.inner.settings;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.inner.http.get(self.url(CALL)).query(&[
                ("corpid", self.inner.corp_id.as_str()),
                ("corpsecret", self.inner.secret.expose_secret()),
            ]);
            let sent = Instant::now();
            let result = async {
                let response = request.send().await.map_err(|e| transport(CALL, e))?;
                if response.status() != reqwest::StatusCode::OK {
                    return Err(WecomError::Http {
                        call: CALL,
                        status: response.status().as_u16(),
                    });
                }
                let bytes = response.bytes().await.map_err(|e| transport(CALL, e))?;
                decode::<TokenResponse>(CALL, &bytes)
            }
            .await;
            let latency_ms = sent.elapsed().as_millis() as u64;
            let error = match result {
                Ok(answer) if !answer.access_token.is_empty() => {
                    tracing::info!(
                        call = CALL,
                        errcode = 0,
                        latency_ms,
                        expires_in = answer.expires_in,
                        "access token fetched"
                    );
                    return Ok((answer.access_token, answer.expires_in.max(60)));
                }
                Ok(_) => WecomError::Decode {
                    call: CALL,
                    message: "no access_token in the answer".into(),
                },
                Err(WecomError::Api { code, message, .. }) if !is_busy(code) => {
                    let error = WecomError::Config { code, message };
                    tracing::error!(call = CALL, errcode = code, latency_ms, error = %error, "cannot get an access token");
                    return Err(error);
                }
                Err(e) => e,
            };
            tracing::warn!(call = CALL, errcode = error.code(), latency_ms, error = %error, "gettoken failed");
            let delay = backoff(settings.retry_base, attempt);
            if !error.is_transient()
                || attempt >= settings.max_attempts
                || started.elapsed() + delay > settings.retry_budget
            {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
        }
    }
}

fn is_busy(code: i64) -> bool {
    matches!(
        code,
        codes::SYSTEM_BUSY | codes::API_FREQ_LIMIT | codes::CONCURRENCY_LIMIT
    )
}

//! Who is signed in: a sealed cookie carrying the member's userid, an expiry and the session's CSRF
//! token. Nothing is kept on the server, so every instance reads the same cookie; a member who has
//! left is refused however long their cookie still runs.

use axum::http::HeaderMap;
use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::seal::Sealer;
use crate::config::WebConfig;
use crate::db::entity::kv_state;

pub const SESSION_COOKIE: &str = "scrm_session";
/// The CSRF token, readable by the page's script (which sends it back as [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "scrm_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
const SEAL_PURPOSE: &str = "session";
/// Where a generated web key is kept.
const KEY_STATE: &str = "web.session_key";

/// The web key: from `web.session_key`, or generated once and kept in the database, so every
/// instance (and every restart) signs with the same key.
pub async fn load_key(db: &impl ConnectionTrait, config: &WebConfig, now: i64) -> Result<Sealer, DbErr> {
    let configured = config.session_key.expose_secret();
    if !configured.is_empty() {
        return Ok(Sealer::new(configured.as_bytes()));
    }
    if let Some(stored) = kv_state::Entity::find_by_id(KEY_STATE).one(db).await? {
        return Ok(Sealer::new(stored.value.as_bytes()));
    }
    let generated = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    // Two instances starting together: the first key stored wins, and both read it back.
    kv_state::Entity::insert(kv_state::ActiveModel {
        key: sea_orm::Set(KEY_STATE.to_owned()),
        value: sea_orm::Set(generated),
        updated_at: sea_orm::Set(now),
    })
    .on_conflict_do_nothing_on([kv_state::Column::Key])
    .exec(db)
    .await?;
    let stored = kv_state::Entity::find_by_id(KEY_STATE)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(KEY_STATE.into()))?;
    Ok(Sealer::new(stored.value.as_bytes()))
}

/// A signed-in member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    pub userid: String,
    /// Unix seconds after which the session is over.
    #[serde(rename = "e")]
    pub expires: i64,
    #[serde(rename = "c")]
    pub csrf: String,
}

impl Session {
    pub fn new(userid: String, now_secs: i64, ttl_secs: u64) -> Self {
        Self {
            userid,
            expires: now_secs.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
            csrf: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>()),
        }
    }

    pub fn seal(&self, sealer: &Sealer) -> String {
        sealer.seal(
            SEAL_PURPOSE,
            &serde_json::to_string(self).expect("a session serializes"),
        )
    }

    /// The session in the request's cookie, if it is one we sealed and it has not expired.
    pub fn from_headers(headers: &HeaderMap, sealer: &Sealer, now_secs: i64) -> Option<Self> {
        let sealed = cookie(headers, SESSION_COOKIE)?;
        let session: Self = serde_json::from_str(&sealer.open(SEAL_PURPOSE, &sealed)?).ok()?;
        (session.expires > now_secs).then_some(session)
    }

    /// Whether the request carries this session's CSRF token in its header (constant time).
    pub fn csrf_matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|presented| bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// How cookies are set: `Secure` unless the public URL is plain http (a local demo), and under the
/// public URL's path (a proxy may serve the service under a prefix, e.g. `https://host/scrm`).
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub secure: bool,
    /// The public URL's path, without a trailing slash (empty at the root).
    pub prefix: String,
}

impl CookiePolicy {
    pub fn for_config(config: &WebConfig) -> Self {
        let base = config.base().unwrap_or_default();
        let after_scheme = base.split_once("://").map_or("", |(_, rest)| rest);
        let prefix = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        Self {
            secure: !config.public_url.trim().starts_with("http://"),
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// A `Set-Cookie` value for the service's `path` (e.g. `/web`). `http_only` unless the page's
    /// script must read it.
    pub fn set(&self, name: &str, value: &str, path: &str, max_age_secs: u64, http_only: bool) -> String {
        let path = format!("{}{path}", self.prefix);
        let mut cookie = format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; SameSite=Lax");
        if http_only {
            cookie.push_str("; HttpOnly");
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// A `Set-Cookie` value that removes the cookie.
    pub fn clear(&self, name: &str, path: &str) -> String {
        self.set(name, "", path, 0, true)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(cookies: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(cookies).unwrap());
        headers
    }

    #[test]
    fn a_session_round_trips_until_it_expires() {
        let sealer = Sealer::new(b"0123456789abcdef0123456789abcdef");
        let session = Session::new("zhangsan".into(), 1_000, 60);
        let sealed = session.seal(&sealer);
        let request = headers(&format!("a=b; {SESSION_COOKIE}={sealed}; c=d"));
        assert_eq!(Session::from_headers(&request, &sealer, 1_059), Some(session.clone()));
        assert_eq!(Session::from_headers(&request, &sealer, 1_060), None);
        let other = Sealer::new(b"another key, also 32 bytes long!");
        assert_eq!(Session::from_headers(&request, &other, 1_000), None);
    }

    #[test]
    fn the_csrf_header_must_match_the_session() {
        let session = Session::new("zhangsan".into(), 0, 60);
        let mut request = HeaderMap::new();
        assert!(!session.csrf_matches(&request));
        request.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(!session.csrf_matches(&request));
        request.insert(CSRF_HEADER, HeaderValue::from_str(&session.csrf).unwrap());
        assert!(session.csrf_matches(&request));
    }

    #[test]
    fn cookies_are_secure_unless_the_public_url_is_plain_http() {
        let mut config = WebConfig {
            public_url: "https://crm.example.com".into(),
            ..WebConfig::default()
        };
        let set = CookiePolicy::for_config(&config).set("n", "v", "/web", 60, true);
        assert_eq!(set, "n=v; Path=/web; Max-Age=60; SameSite=Lax; HttpOnly; Secure");
        config.public_url = "http://127.0.0.1:8080".into();
        let set = CookiePolicy::for_config(&config).set("n", "v", "/web", 60, false);
        assert_eq!(set, "n=v; Path=/web; Max-Age=60; SameSite=Lax");
        // Behind a proxy that serves the service under a prefix, cookies follow the prefix.
        config.public_url = "https://crm.example.com/scrm/".into();
        let set = CookiePolicy::for_config(&config).set("n", "v", "/web", 60, true);
        assert_eq!(set, "n=v; Path=/scrm/web; Max-Age=60; SameSite=Lax; HttpOnly; Secure");
    }
}

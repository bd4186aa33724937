//! Signing in through WeCom (OAuth2, `snsapi_base`). A page opened without a session sends the
//! browser to WeCom's authorize address with a `state` the service signed; WeCom comes back to
//! `/web/oauth/callback` with a one-time `code`, which the service exchanges for the member's
//! userid. The `state` is bound to the browser that started (a sealed cookie holds its nonce and
//! the page to return to), expires, and is accepted once.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};

use super::WebContext;
use super::pages::{Message, message_page};
use super::session::{CSRF_COOKIE, SESSION_COOKIE, Session, cookie};
use super::user::lang_of;
use crate::db::entity::member;
use crate::db::now_ms;
use crate::http::AppState;
use crate::texts::Lang;
use crate::wecom::api::{SignedIn, WecomError};
use crate::wecom::jssdk::authorize_url;

const BINDING_COOKIE: &str = "scrm_signin";
const BINDING_PATH: &str = "/web/oauth";
const STATE_PURPOSE: &str = "signin-state";
const BINDING_PURPOSE: &str = "signin-binding";
/// WeCom's "invalid code": used already, expired (5 minutes), or never issued.
const INVALID_CODE: i64 = 40029;

/// The browser's half of a started sign-in.
#[derive(Serialize, Deserialize)]
struct Binding {
    /// The state's nonce.
    n: String,
    /// The page to return to (a path under `/web/`).
    r: String,
}

/// `state`: a nonce, its expiry (Unix seconds) and their signature, all hex — WeCom accepts only
/// letters and digits, at most 128 bytes.
fn make_state(web: &WebContext, nonce: &str, expires: i64) -> String {
    let signed = format!("{nonce}{expires:012x}");
    let tag = web.sealer.tag_hex(STATE_PURPOSE, &signed, 16);
    format!("{signed}{tag}")
}

/// The nonce of a state we signed that has not expired.
fn check_state(web: &WebContext, state: &str, now_secs: i64) -> Option<String> {
    if state.len() != 76 || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (signed, tag) = state.split_at(44);
    if !web.sealer.check_hex(STATE_PURPOSE, signed, tag) {
        return None;
    }
    let expires = i64::from_str_radix(&signed[32..], 16).ok()?;
    (expires > now_secs).then(|| signed[..32].to_owned())
}

/// Where sign-in may return to: a page under `/web/`, never the API or the callback itself.
fn safe_return(path: &str) -> &str {
    let ok = path.starts_with("/web/")
        && !path.starts_with("/web/api/")
        && !path.starts_with("/web/oauth/")
        && !path.contains("//")
        && !path.contains('\\');
    if ok { path } else { "/web/sidebar" }
}

/// Sends the browser to WeCom to sign in, to come back to `back` afterwards.
pub fn start(state: &AppState, web: &WebContext, base: &str, back: &str) -> Response {
    let nonce: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
    let ttl = state.config.web.sign_in_ttl_secs;
    let expires = now_ms() / 1000 + i64::try_from(ttl).unwrap_or(600);
    let signed_state = make_state(web, &nonce, expires);
    let binding = serde_json::to_string(&Binding {
        n: nonce,
        r: safe_return(back).to_owned(),
    })
    .expect("a binding serializes");
    let sealed = web.sealer.seal(BINDING_PURPOSE, &binding);
    let wecom = &state.config.wecom;
    let location = authorize_url(
        &wecom.oauth_base,
        &wecom.corp_id,
        &format!("{base}/web/oauth/callback"),
        &signed_state,
        wecom.agent_id,
    );
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::SET_COOKIE,
                web.cookies.set(BINDING_COOKIE, &sealed, BINDING_PATH, ttl, true),
            ),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /web/oauth/callback?code=&state=`: signs the member in and returns to their page.
pub async fn callback(
    State(state): State<AppState>,
    axum::Extension(web): axum::Extension<std::sync::Arc<WebContext>>,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    // The language of the page the member was opening, else the browser's.
    let lang = cookie(&parts.headers, BINDING_COOKIE)
        .and_then(|sealed| web.sealer.open(BINDING_PURPOSE, &sealed))
        .and_then(|json| serde_json::from_str::<Binding>(&json).ok())
        .and_then(|b| {
            let query = b.r.split_once('?')?.1.to_owned();
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "lang")
                .map(|(_, v)| v.into_owned())
        })
        .map_or_else(
            || lang_of(&parts),
            |l| if l.starts_with("en") { Lang::En } else { Lang::Zh },
        );
    let Query(query) = match Query::<CallbackQuery>::try_from_uri(&parts.uri) {
        Ok(q) => q,
        Err(_) => return message_page(&web, lang, StatusCode::BAD_REQUEST, Message::BadSignIn),
    };
    let headers = std::mem::take(&mut parts.headers);
    sign_in(&state, &web, lang, query, &headers).await
}

async fn sign_in(
    state: &AppState,
    web: &WebContext,
    lang: Lang,
    query: CallbackQuery,
    headers: &HeaderMap,
) -> Response {
    let page = |status, message| message_page(web, lang, status, message);
    let Some(base) = state.config.web.base() else {
        return page(StatusCode::SERVICE_UNAVAILABLE, Message::NotConfigured);
    };
    let now_secs = now_ms() / 1000;
    // A state we did not sign (or an expired one) is refused before WeCom is asked anything.
    let Some(nonce) = query.state.as_deref().and_then(|s| check_state(web, s, now_secs)) else {
        return page(StatusCode::BAD_REQUEST, Message::BadSignIn);
    };
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= 512) else {
        // WeCom comes back without a code when the member refused.
        return page(StatusCode::FORBIDDEN, Message::SignInRefused);
    };
    let userid = match state.services.wecom.user_of_code(&code).await {
        Ok(SignedIn::Member { userid }) => userid,
        Ok(SignedIn::Outsider) => return page(StatusCode::FORBIDDEN, Message::NotAMember),
        Err(WecomError::Api { code, .. }) if code == INVALID_CODE => {
            return page(StatusCode::UNAUTHORIZED, Message::CodeUsed);
        }
        Err(e) => {
            tracing::warn!(error = %crate::telemetry::Chain(&e), "sign-in: WeCom did not answer");
            return page(StatusCode::SERVICE_UNAVAILABLE, Message::WecomDown);
        }
    };
    // The browser must be the one that started this sign-in.
    let binding = cookie(headers, BINDING_COOKIE)
        .and_then(|sealed| web.sealer.open(BINDING_PURPOSE, &sealed))
        .and_then(|json| serde_json::from_str::<Binding>(&json).ok())
        .filter(|b| b.n == nonce);
    let Some(binding) = binding else {
        return page(StatusCode::BAD_REQUEST, Message::OtherBrowser);
    };
    // Each state is accepted once, on every instance.
    let ttl = Duration::from_secs(state.config.web.sign_in_ttl_secs.max(1));
    match state.cache.set_nx(&format!("web:signin:{nonce}"), "1", ttl).await {
        Ok(true) => {}
        Ok(false) => return page(StatusCode::BAD_REQUEST, Message::BadSignIn),
        Err(e) => {
            tracing::error!(error = %e, "sign-in: the cache is unavailable");
            return page(StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    }
    match member::Entity::find_by_id(userid.clone()).one(&state.db).await {
        Ok(Some(m)) if m.active => {}
        Ok(_) => {
            tracing::info!(%userid, "sign-in refused: not an active member here");
            return page(StatusCode::FORBIDDEN, Message::NotAMember);
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in: database unavailable");
            return page(StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    }
    tracing::info!(%userid, "signed in through WeCom");
    let config = &state.config.web;
    let session = Session::new(userid, now_secs, config.session_ttl_secs);
    let cookies = &web.cookies;
    let mut response = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, format!("{base}{}", safe_return(&binding.r))),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    let set = [
        cookies.set(
            SESSION_COOKIE,
            &session.seal(&web.sealer),
            "/web",
            config.session_ttl_secs,
            true,
        ),
        cookies.set(CSRF_COOKIE, &session.csrf, "/web", config.session_ttl_secs, false),
        cookies.clear(BINDING_COOKIE, BINDING_PATH),
    ];
    for value in set {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::seal::Sealer;
    use crate::web::session::CookiePolicy;

    fn web() -> WebContext {
        WebContext {
            sealer: Sealer::new(b"0123456789abcdef0123456789abcdef"),
            cookies: CookiePolicy {
                secure: true,
                prefix: String::new(),
            },
            base: None,
            templates: crate::web::templates(),
        }
    }

    #[test]
    fn a_state_is_letters_and_digits_and_checks_until_it_expires() {
        let web = web();
        let state = make_state(&web, "0123456789abcdef0123456789abcdef", 1_000);
        assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            check_state(&web, &state, 999).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(check_state(&web, &state, 1_000), None);
        let mut forged = state.clone();
        forged.replace_range(40..44, "ffff");
        assert_eq!(check_state(&web, &forged, 0), None);
        assert_eq!(check_state(&web, "abc", 0), None);
    }

    #[test]
    fn sign_in_returns_only_to_pages() {
        assert_eq!(safe_return("/web/customers/wm1?entry=x"), "/web/customers/wm1?entry=x");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/web/api/jssdk",
            "/web/oauth/callback",
            "/api/v1/x",
            "/web//evil",
        ] {
            assert_eq!(safe_return(bad), "/web/sidebar", "{bad}");
        }
    }
}

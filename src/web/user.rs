//! Who is asking: the signed-in member of a page or of a page's API call, and the language to
//! answer in. Pages without a session start the sign-in; API calls without one answer 401.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use sea_orm::EntityTrait;

use super::WebContext;
use super::pages::{Message, message_page};
use super::session::Session;
use super::signin;
use crate::db::entity::member;
use crate::db::now_ms;
use crate::http::AppState;
use crate::http::api::problem::Problem;
use crate::texts::Lang;

/// `?lang=en` first, then the browser's (the WeCom client's) language; Chinese otherwise.
pub fn lang_of(parts: &Parts) -> Lang {
    let asked = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="));
    match asked {
        Some(l) if l.starts_with("en") => return Lang::En,
        Some(l) if l.starts_with("zh") => return Lang::Zh,
        _ => {}
    }
    let accepted = parts
        .headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start()
        .to_ascii_lowercase();
    if accepted.starts_with("en") { Lang::En } else { Lang::Zh }
}

/// The signed-in member behind a request, if their session is valid and they are still with the
/// company.
async fn member_of(state: &AppState, web: &WebContext, headers: &HeaderMap) -> Result<Session, SessionProblem> {
    let session = Session::from_headers(headers, &web.sealer, now_ms() / 1000).ok_or(SessionProblem::None)?;
    let member = member::Entity::find_by_id(session.userid.clone())
        .one(&state.db)
        .await
        .map_err(|e| SessionProblem::Database(e.to_string()))?;
    match member {
        Some(m) if m.active => Ok(session),
        _ => Err(SessionProblem::Departed),
    }
}

enum SessionProblem {
    None,
    Departed,
    Database(String),
}

fn web_context(parts: &Parts) -> Arc<WebContext> {
    parts
        .extensions
        .get::<Arc<WebContext>>()
        .cloned()
        .expect("the web router adds its context")
}

/// The member a page is rendered for.
pub struct PageUser {
    pub session: Session,
    pub lang: Lang,
    pub web: Arc<WebContext>,
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(parts);
        let web = web_context(parts);
        let Some(base) = state.config.web.base() else {
            return Err(message_page(
                &web,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                Message::NotConfigured,
            ));
        };
        match member_of(state, &web, &parts.headers).await {
            Ok(session) => Ok(Self { session, lang, web }),
            Err(SessionProblem::None) => {
                let back = parts.uri.path_and_query().map_or("/web/sidebar", |p| p.as_str());
                Err(signin::start(state, &web, base, back))
            }
            Err(SessionProblem::Departed) => Err(message_page(&web, lang, StatusCode::FORBIDDEN, Message::NotAMember)),
            Err(SessionProblem::Database(e)) => {
                tracing::error!(error = %e, "web session check failed");
                Err(message_page(
                    &web,
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Message::Unavailable,
                ))
            }
        }
    }
}

/// The member behind a page's API call.
pub struct ApiUser {
    pub session: Session,
    pub lang: Lang,
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let lang = lang_of(parts);
        let web = web_context(parts);
        if state.config.web.base().is_none() {
            return Err(Problem::NotFound("the web pages (web.public_url is not set)"));
        }
        match member_of(state, &web, &parts.headers).await {
            Ok(session) => Ok(Self { session, lang }),
            Err(SessionProblem::None | SessionProblem::Departed) => Err(Problem::SignInRequired),
            Err(SessionProblem::Database(e)) => Err(Problem::Database(sea_orm::DbErr::Custom(e))),
        }
    }
}

/// The member behind a page's write: signed in, and the request carries the session's CSRF token
/// in `X-CSRF-Token` (the page reads it from its `scrm_csrf` cookie or its `csrf-token` meta tag).
pub struct WriteUser(pub ApiUser);

impl FromRequestParts<AppState> for WriteUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let user = ApiUser::from_request_parts(parts, state).await?;
        if !user.session.csrf_matches(&parts.headers) {
            return Err(Problem::Forbidden(
                "the CSRF token is missing or wrong: send the scrm_csrf cookie's value as X-CSRF-Token".into(),
            ));
        }
        Ok(Self(user))
    }
}

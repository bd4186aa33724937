//! The web pages reps open from WeCom — the customer's page in the chat sidebar (聊天工具栏) and the
//! same page opened from a link — with WeCom's sign-in (OAuth2 `snsapi_base`), the JS-SDK
//! signatures the pages register with, and the JSON they read and write through. Pages are
//! rendered on the server from the templates in `web/templates` (minijinja, escaped by default); a
//! little inline script does the rest, so no front-end build is needed.
//!
//! Routes (a contract): `GET /web/sidebar`, `GET /web/customers/{external_userid}`,
//! `GET /web/oauth/callback`, and under `/web/api`: `GET jssdk?url=`, `GET customers/{id}`,
//! `POST customers/{id}/notes`, `POST customers/{id}/reminders`, `PATCH customers/{id}`.

mod api;
mod dashboard;
mod pages;
pub mod seal;
pub mod session;
mod signin;
mod texts;
mod user;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};
use minijinja::Environment;
use sea_orm::{ConnectionTrait, DbErr};

use self::seal::Sealer;
use self::session::CookiePolicy;
use crate::config::Config;
use crate::http::AppState;

/// Bodies of the pages' JSON writes: a note or a reminder is a few hundred bytes.
pub const WEB_BODY_LIMIT: usize = 16 * 1024;

/// What the pages need besides the app's state, built once at start-up.
pub struct WebContext {
    pub sealer: Sealer,
    pub cookies: CookiePolicy,
    /// `web.public_url` without its trailing slash, when the pages are on.
    pub base: Option<String>,
    templates: Environment<'static>,
}

impl WebContext {
    /// Loads (or creates) the web key and the templates.
    pub async fn build(db: &impl ConnectionTrait, config: &Config, now: i64) -> Result<Self, DbErr> {
        let sealer = session::load_key(db, &config.web, now).await?;
        Ok(Self {
            sealer,
            cookies: CookiePolicy::for_config(&config.web),
            base: config.web.base().map(str::to_owned),
            templates: templates(),
        })
    }
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("sidebar.html", include_str!("templates/sidebar.html")),
        ("customer.html", include_str!("templates/customer.html")),
        ("message.html", include_str!("templates/message.html")),
        ("dashboard.html", include_str!("templates/dashboard.html")),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
    }
    env
}

/// The routes under `/web`, to merge into the service's router.
pub fn router(context: Arc<WebContext>) -> Router<AppState> {
    Router::new()
        .route("/web", get(pages::home))
        .route("/web/", get(pages::home))
        .route("/web/sidebar", get(pages::sidebar))
        .route("/web/dashboard", get(dashboard::page))
        .route("/web/customers/{external_userid}", get(pages::customer))
        .route("/web/oauth/callback", get(signin::callback))
        .route("/web/api/jssdk", get(api::jssdk))
        .route(
            "/web/api/customers/{external_userid}",
            get(api::customer).patch(api::update),
        )
        .route("/web/api/customers/{external_userid}/notes", post(api::add_note))
        .route(
            "/web/api/customers/{external_userid}/reminders",
            post(api::add_reminder),
        )
        .route("/web/{*rest}", get(pages::not_found))
        .layer(DefaultBodyLimit::max(WEB_BODY_LIMIT))
        .layer(Extension(context))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        let env = super::templates();
        assert_eq!(env.templates().count(), 5);
    }
}

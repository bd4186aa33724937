//! The HTML pages: the sidebar (which finds the customer of the current chat through the JS-SDK
//! and opens their page), a customer's page, and the pages that say what went wrong.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::WebContext;
use super::api::{CardJson, card_json, find};
use super::texts::texts;
use super::user::PageUser;
use crate::bot::replies;
use crate::crm::card::{self, Access};
use crate::crm::{customers, deals};
use crate::db::now_ms;
use crate::http::AppState;
use crate::texts::Lang;

/// Renders `template`; a template error is a bug, answered as a plain 500 and logged.
pub(super) fn render(web: &WebContext, status: StatusCode, template: &str, ctx: minijinja::Value) -> Response {
    let html = web.templates.get_template(template).and_then(|t| t.render(ctx));
    match html {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            response
        }
        Err(e) => {
            tracing::error!(template, error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page error").into_response()
        }
    }
}

/// What a message page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    NotConfigured,
    NotAMember,
    Unavailable,
    WecomDown,
    BadSignIn,
    SignInRefused,
    CodeUsed,
    OtherBrowser,
    NotFound,
    NoSuchPage,
    LeadersOnly,
}

impl Message {
    fn words(self, lang: Lang) -> (&'static str, &'static str) {
        let en = lang.en();
        match (self, en) {
            (Self::NotConfigured, false) => ("网页未启用", "管理员还没有设置 web.public_url（应用的可信域名）。"),
            (Self::NotConfigured, true) => (
                "Pages are off",
                "The administrator has not set web.public_url (the app's trusted domain).",
            ),
            (Self::NotAMember, false) => ("无法访问", "只有本企业在职的成员可以打开这个页面。"),
            (Self::NotAMember, true) => ("No access", "Only active members of the company can open this page."),
            (Self::Unavailable, false) => ("服务暂时不可用", "请稍后再试。"),
            (Self::Unavailable, true) => ("Unavailable", "Please try again in a moment."),
            (Self::WecomDown, false) => ("企业微信暂时无法登录", "企业微信没有响应，登录没有完成。请稍后重试。"),
            (Self::WecomDown, true) => (
                "WeCom did not answer",
                "Signing in through WeCom did not finish. Please try again in a moment.",
            ),
            (Self::BadSignIn, false) => ("登录链接无效", "这个登录链接无效、已过期或已经用过。请重新打开页面。"),
            (Self::BadSignIn, true) => (
                "Invalid sign-in link",
                "This sign-in link is invalid, expired or already used. Open the page again.",
            ),
            (Self::SignInRefused, false) => ("没有登录", "企业微信没有完成授权。请重新打开页面。"),
            (Self::SignInRefused, true) => (
                "Not signed in",
                "WeCom did not authorise the sign-in. Open the page again.",
            ),
            (Self::CodeUsed, false) => ("登录码已失效", "这个登录码已经用过或超过 5 分钟。请重新打开页面。"),
            (Self::CodeUsed, true) => (
                "Sign-in code expired",
                "This sign-in code was already used or is older than 5 minutes. Open the page again.",
            ),
            (Self::OtherBrowser, false) => (
                "请在同一处完成登录",
                "登录是在另一个浏览器或窗口开始的。请重新打开页面。",
            ),
            (Self::OtherBrowser, true) => (
                "Finish signing in where you started",
                "This sign-in was started in another browser or window. Open the page again.",
            ),
            (Self::NotFound, false) => ("找不到这位客户", "客户不存在，或者不在你负责、跟进或管理的范围内。"),
            (Self::NotFound, true) => (
                "Customer not found",
                "The customer does not exist, or is not one you own, follow or manage.",
            ),
            (Self::NoSuchPage, false) => ("没有这个页面", "地址可能写错了。"),
            (Self::NoSuchPage, true) => ("No such page", "The address may be mistyped."),
            (Self::LeadersOnly, false) => ("只有负责人可以查看", "销售看板只对部门负责人和管理员开放。"),
            (Self::LeadersOnly, true) => (
                "For leaders only",
                "The sales dashboard is open to department leaders and administrators.",
            ),
        }
    }
}

pub fn message_page(web: &WebContext, lang: Lang, status: StatusCode, message: Message) -> Response {
    let (title, text) = message.words(lang);
    let t = texts(lang);
    render(
        web,
        status,
        "message.html",
        context! {
            t => Value::from(Serde(&t)),
            title,
            text,
            status => status.as_u16(),
            retry_url => web.base.as_ref().map(|base| format!("{base}/web/sidebar")),
        },
    )
}

/// `GET /web`: the sidebar, where every visit starts.
pub async fn home(State(state): State<AppState>) -> Response {
    let base = state.config.web.base().unwrap_or_default();
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{base}/web/sidebar"))],
    )
        .into_response()
}

/// Any other page under `/web`: a page that says so, in the browser's language.
pub async fn not_found(
    axum::Extension(web): axum::Extension<std::sync::Arc<WebContext>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    message_page(
        &web,
        super::user::lang_of(&parts),
        StatusCode::NOT_FOUND,
        Message::NoSuchPage,
    )
}

#[derive(Serialize)]
struct ListedCustomer {
    external_userid: String,
    name: String,
    stage: Option<String>,
    last_follow_up: Option<String>,
}

/// `GET /web/sidebar`: registers with the JS-SDK, asks WeCom which customer's chat it is open in,
/// and opens their page; elsewhere (a group chat, the workbench, a plain browser) it lists the
/// member's customers.
pub async fn sidebar(user: PageUser, State(state): State<AppState>) -> Response {
    let PageUser { session, lang, web } = user;
    let now = now_ms();
    let tz = state.services.tz();
    let listed = match card::recent_customers(&state.db, &session.userid, 30).await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!(error = %e, "sidebar: customers unavailable");
            return message_page(&web, lang, StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    };
    let customers: Vec<ListedCustomer> = listed
        .into_iter()
        .map(|c| ListedCustomer {
            name: customers::display(&c),
            last_follow_up: c.last_follow_up_at.map(|t| replies::when_near(t, now, tz, lang)),
            external_userid: c.external_userid,
            stage: c.stage,
        })
        .collect();
    let config = &state.config;
    render(
        &web,
        StatusCode::OK,
        "sidebar.html",
        context! {
            t => Value::from(Serde(texts(lang))),
            base => config.web.base().unwrap_or_default(),
            jssdk_url => &config.web.jssdk_url,
            csrf => &session.csrf,
            customers => Value::from(Serde(&customers)),
        },
    )
}

#[derive(Serialize)]
struct NoteView {
    author: String,
    when: String,
    content: String,
}

#[derive(Serialize)]
struct ReminderView {
    when: String,
    overdue: bool,
    owner: String,
    text: String,
    failure: Option<String>,
}

/// `GET /web/customers/{external_userid}`: the customer's page.
pub async fn customer(user: PageUser, State(state): State<AppState>, Path(external_userid): Path<String>) -> Response {
    let PageUser { session, lang, web } = user;
    let now = now_ms();
    let tz = state.services.tz();
    let found = match find(&state, &session.userid, &external_userid).await {
        Ok(found) => Some(found),
        Err(sea_orm::DbErr::RecordNotFound(_)) => None,
        Err(e) => {
            tracing::error!(error = %e, "customer page: database unavailable");
            return message_page(&web, lang, StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    };
    let Some((c, access)) = found else {
        return message_page(&web, lang, StatusCode::NOT_FOUND, Message::NotFound);
    };
    let card = match card::card(&state.db, &state.config, c, now).await {
        Ok(card) => card,
        Err(e) => {
            tracing::error!(error = %e, "customer page: database unavailable");
            return message_page(&web, lang, StatusCode::SERVICE_UNAVAILABLE, Message::Unavailable);
        }
    };
    let notes: Vec<NoteView> = card
        .follow_ups
        .iter()
        .map(|(n, author)| NoteView {
            author: author.name.clone(),
            when: replies::when_near(n.created_at, now, tz, lang),
            content: n.content.clone(),
        })
        .collect();
    let reminders: Vec<ReminderView> = card
        .reminders
        .iter()
        .map(|(r, owner)| ReminderView {
            when: replies::when_near(r.due_at, now, tz, lang),
            overdue: r.due_at < now,
            owner: owner.name.clone(),
            text: r.text.clone(),
            failure: r.last_error.clone().filter(|_| r.delivery_state.as_str() == "failed"),
        })
        .collect();
    let rating_meaning = card
        .customer
        .rating
        .as_deref()
        .map(|r| deals::rating_meaning(r, lang.en()));
    let json: CardJson = card_json(&card, access, tz, lang);
    render(
        &web,
        StatusCode::OK,
        "customer.html",
        context! {
            t => Value::from(Serde(texts(lang))),
            base => state.config.web.base().unwrap_or_default(),
            csrf => &session.csrf,
            title => customers::display(&card.customer),
            card => Value::from(Serde(&json)),
            notes => Value::from(Serde(&notes)),
            reminders => Value::from(Serde(&reminders)),
            rating_meaning,
            editable => access == Access::Change,
        },
    )
}

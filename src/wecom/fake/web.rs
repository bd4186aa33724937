//! The fake's web side: WeCom's sign-in page (`/connect/oauth2/authorize`, which redirects back
//! with a one-time code for a chosen member), the code exchange (`auth/getuserinfo`), the JS-SDK
//! tickets (`get_jsapi_ticket`, `ticket/get?type=agent_config`), and a stand-in for WeCom's JS-SDK
//! (`/_fake/ww.js`) whose `ww.register` checks the page's signatures against the tickets issued,
//! so a page works — and is checked — in a plain browser.
//!
//! Who signs in and which chat the sidebar is open in: the `fake_wecom_*` cookies that
//! `/_fake/open?as=&contact=&entry=&next=` sets (as the WeCom client would know them), else what
//! a test set with [`super::FakeWecom::sign_in_as`] and [`super::FakeWecom::set_chat_context`],
//! else a page to pick a member.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::routes::Shared;
use super::state::{Answer, Refusal};
use crate::wecom::jssdk;

/// A sign-in code lives this long unused (WeCom: 5 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(300);
const TICKET_LIFETIME_SECS: u64 = 7200;
const USER_COOKIE: &str = "fake_wecom_user";
const CONTACT_COOKIE: &str = "fake_wecom_contact";
const ENTRY_COOKIE: &str = "fake_wecom_entry";

/// Who the fake signs in when no cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Member(String),
    /// A WeChat user outside the corp (WeCom answers an `openid`).
    Outsider,
}

/// The chat a sidebar page is open in, as `getContext` / `getCurExternalContact` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatContext {
    pub entry: String,
    pub external_userid: Option<String>,
}

impl Default for ChatContext {
    fn default() -> Self {
        Self {
            entry: "normal".into(),
            external_userid: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct WebSide {
    codes: HashMap<String, (Signer, Instant)>,
    seq: u64,
    corp_tickets: Vec<String>,
    agent_tickets: Vec<String>,
    pub signer: Option<Signer>,
    pub context: ChatContext,
}

fn refuse(code: i64, message: &str) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl WebSide {
    /// A one-time code for `signer`.
    pub fn issue_code(&mut self, signer: Signer) -> String {
        self.seq += 1;
        let code = format!("fakecode{}x{:08x}", self.seq, rand::random::<u32>());
        self.codes.insert(code.clone(), (signer, Instant::now()));
        code
    }

    /// `auth/getuserinfo`: a code works once, within its lifetime (else 40029).
    pub fn user_of_code(&mut self, code: &str) -> Answer {
        match self.codes.remove(code) {
            Some((signer, issued)) if issued.elapsed() < CODE_LIFETIME => Ok(match signer {
                Signer::Member(userid) => json!({ "userid": userid, "user_ticket": "" }),
                Signer::Outsider => json!({ "openid": format!("oFake{:08x}", rand::random::<u32>()) }),
            }),
            _ => Err(refuse(40029, "invalid code")),
        }
    }

    pub fn corp_ticket(&mut self) -> Answer {
        self.seq += 1;
        let ticket = format!("fakecorpticket{}{:016x}", self.seq, rand::random::<u64>());
        self.corp_tickets.push(ticket.clone());
        Ok(json!({ "ticket": ticket, "expires_in": TICKET_LIFETIME_SECS }))
    }

    pub fn agent_ticket(&mut self, kind: &str) -> Answer {
        if kind != "agent_config" {
            return Err(refuse(40058, "invalid type"));
        }
        self.seq += 1;
        let ticket = format!("fakeagentticket{}{:016x}", self.seq, rand::random::<u64>());
        self.agent_tickets.push(ticket.clone());
        Ok(json!({ "ticket": ticket, "expires_in": TICKET_LIFETIME_SECS }))
    }

    /// Whether `signature` is what WeCom expects for this page with a ticket it issued.
    fn check(&self, agent: bool, url: &str, nonce: &str, timestamp: i64, signature: &str) -> bool {
        let tickets = if agent { &self.agent_tickets } else { &self.corp_tickets };
        tickets
            .iter()
            .any(|t| jssdk::signature(t, nonce, timestamp, url) == signature)
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| decode(v))
        .filter(|v| !v.is_empty())
}

fn decode(text: &str) -> String {
    form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><meta charset=utf-8><h1>fake WeCom</h1><p>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    appid: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    agentid: Option<String>,
    /// The picker's choice: a userid, or `~outsider`.
    pick: Option<String>,
}

/// `GET /connect/oauth2/authorize`: checks the parameters as WeCom does and redirects back with a
/// code for the signed-in member — or shows a page to pick one.
pub async fn authorize(
    Extract(shared): Extract<Shared>,
    headers: HeaderMap,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let mut state = shared.lock();
    let corp_id = state.corp_id().to_owned();
    if q.appid.as_deref() != Some(corp_id.as_str()) {
        return error_page("appid is not this corp's id");
    }
    if q.response_type.as_deref() != Some("code")
        || !matches!(q.scope.as_deref(), Some("snsapi_base" | "snsapi_privateinfo"))
    {
        return error_page("response_type must be code and scope snsapi_base");
    }
    let Some(redirect) = q
        .redirect_uri
        .filter(|r| r.starts_with("http://") || r.starts_with("https://"))
    else {
        return error_page("redirect_uri is missing or not a URL");
    };
    let back_state = q.state.unwrap_or_default();
    if back_state.len() > 128 || !back_state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return error_page("state must be letters and digits, at most 128 bytes");
    }
    if q.agentid.as_deref().and_then(|a| a.parse::<i64>().ok()) != Some(state.agent_id()) {
        return error_page("agentid is not this app's");
    }
    let signer = match q.pick.as_deref() {
        Some("~outsider") => Some(Signer::Outsider),
        Some(userid) if state.is_member(userid) => Some(Signer::Member(userid.to_owned())),
        _ => cookie(&headers, USER_COOKIE)
            .map(|u| {
                if u == "~outsider" {
                    Signer::Outsider
                } else {
                    Signer::Member(u)
                }
            })
            .or_else(|| state.web.signer.clone()),
    };
    let Some(signer) = signer else {
        return picker(
            &state.member_names(),
            &redirect,
            &back_state,
            &corp_id,
            state.agent_id(),
        );
    };
    let code = state.web.issue_code(signer);
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let location = format!("{redirect}{separator}code={code}&state={back_state}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn picker(members: &[(String, String)], redirect: &str, state: &str, corp_id: &str, agent_id: i64) -> Response {
    let link = |pick: &str| {
        format!(
            "/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope=snsapi_base&state={state}&agentid={agent_id}&pick={}",
            encode(corp_id),
            encode(redirect),
            encode(pick)
        )
    };
    let mut items: Vec<String> = members
        .iter()
        .map(|(userid, name)| {
            format!(
                "<li><a href=\"{}\">{} ({})</a></li>",
                escape(&link(userid)),
                escape(name),
                escape(userid)
            )
        })
        .collect();
    items.push(format!(
        "<li><a href=\"{}\">企业外的微信用户 (an outsider)</a></li>",
        escape(&link("~outsider"))
    ));
    Html(format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>fake WeCom</title>\
         <h1>模拟企业微信登录</h1><p>以谁的身份登录？ Sign in as:</p><ul>{}</ul>",
        items.join("")
    ))
    .into_response()
}

#[derive(Deserialize)]
pub struct OpenQuery {
    #[serde(rename = "as")]
    user: Option<String>,
    contact: Option<String>,
    entry: Option<String>,
    next: Option<String>,
}

/// `GET /_fake/open?as=&contact=&entry=&next=`: plays the WeCom client — remembers who is signed
/// in and which customer chat the sidebar is open in, then opens `next`.
pub async fn open(Query(q): Query<OpenQuery>) -> Response {
    let Some(next) = q.next.filter(|n| n.starts_with("http://") || n.starts_with("https://")) else {
        return error_page("next must be the URL of the page to open");
    };
    let entry = q.entry.unwrap_or_else(|| {
        if q.contact.is_some() {
            "single_chat_tools".into()
        } else {
            "normal".into()
        }
    });
    let set = |name: &str, value: &str| format!("{name}={}; Path=/; SameSite=Lax", encode(value));
    let mut response = (StatusCode::FOUND, [(header::LOCATION, next)]).into_response();
    let cookies = [
        set(USER_COOKIE, q.user.as_deref().unwrap_or_default()),
        set(CONTACT_COOKIE, q.contact.as_deref().unwrap_or_default()),
        set(ENTRY_COOKIE, &entry),
    ];
    for value in cookies {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `GET /_fake/ww.js`: the stand-in for WeCom's JS-SDK.
pub async fn ww_script(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    let (entry, contact) = {
        let state = shared.lock();
        let context = &state.web.context;
        (
            cookie(&headers, ENTRY_COOKIE).unwrap_or_else(|| context.entry.clone()),
            cookie(&headers, CONTACT_COOKIE).or_else(|| context.external_userid.clone()),
        )
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let script = WW_SCRIPT
        .replace(
            "__CHECK__",
            &serde_json::to_string(&format!("http://{host}/_fake/jssdk/check")).unwrap_or_default(),
        )
        .replace("__ENTRY__", &serde_json::to_string(&entry).unwrap_or_default())
        .replace("__CONTACT__", &serde_json::to_string(&contact).unwrap_or_default());
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        script,
    )
        .into_response()
}

const WW_SCRIPT: &str = r#"/* fake WeCom: a stand-in for @wecom/jssdk's ww object */
(function () {
  var checkUrl = __CHECK__;
  var context = { entry: __ENTRY__, externalUserId: __CONTACT__ };
  var registered = null;
  function verify(kind, url, sig) {
    return fetch(checkUrl, { method: 'POST', body: JSON.stringify({
      kind: kind, url: url, timestamp: Number(sig.timestamp), nonceStr: sig.nonceStr, signature: sig.signature
    }) }).then(function (r) { return r.json(); }).then(function (answer) {
      if (!answer.ok) { throw { errMsg: kind + 'Config:fail invalid signature (40093)' }; }
    });
  }
  function ready() { return registered || Promise.reject({ errMsg: 'ww.register was not called' }); }
  window.ww = {
    fake: true,
    register: function (options) {
      var url = location.href.split('#')[0];
      registered = Promise.resolve(options.getConfigSignature(url))
        .then(function (s) { return verify('config', url, s); })
        .then(function () { return options.getAgentConfigSignature(url); })
        .then(function (s) { return verify('agentConfig', url, s); });
      registered.then(function () {
        if (options.onAgentConfigSuccess) { options.onAgentConfigSuccess({ errMsg: 'agentConfig:ok' }); }
      }, function (e) {
        if (options.onAgentConfigFail) { options.onAgentConfigFail(e); }
      });
    },
    getContext: function () {
      return ready().then(function () { return { entry: context.entry, errMsg: 'getContext:ok' }; });
    },
    getCurExternalContact: function () {
      return ready().then(function () {
        if (!context.externalUserId) { throw { errMsg: 'getCurExternalContact:fail without context of external contact' }; }
        return { userId: context.externalUserId, errMsg: 'getCurExternalContact:ok' };
      });
    }
  };
})();
"#;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureCheck {
    kind: String,
    url: String,
    timestamp: i64,
    nonce_str: String,
    signature: String,
}

/// `POST /_fake/jssdk/check`: whether a page's signature is right (the stand-in's `ww.register`).
pub async fn check_signature(Extract(shared): Extract<Shared>, body: String) -> Response {
    let ok = serde_json::from_str::<SignatureCheck>(&body).is_ok_and(|c| {
        shared
            .lock()
            .web
            .check(c.kind == "agentConfig", &c.url, &c.nonce_str, c.timestamp, &c.signature)
    });
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        axum::Json(json!({ "ok": ok })),
    )
        .into_response()
}

//! A fake WeCom: a real HTTP server (axum) implementing the server API the service uses, from a
//! [`Fixture`]. It issues and checks access tokens, enforces parameters the way WeCom does (with the
//! same errcodes), records every message sent, and can be told to misbehave: expire tokens, answer
//! an errcode or an HTTP error for the next N calls, or answer slowly. It can also play WeCom's
//! other role — encrypt, sign and POST a callback to a service. Tests start it in-process on a
//! random port; `wecom-scrm fake-wecom` runs it on its own, and `wecom-scrm demo` beside the service.

mod cards;
pub mod fixture;
mod routes;
mod state;
mod web;

pub use self::web::{ChatContext, Signer};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

pub use self::fixture::Fixture;
use self::state::State;
use super::api::types::{MessageBody, RemarkUpdate};
use super::crypto::WecomCrypto;

/// A message the service sent through `message/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub msgid: String,
    /// Valid recipients only (invalid ones are reported back to the sender, not delivered).
    pub to_users: Vec<String>,
    pub body: MessageBody,
    pub duplicate_check: bool,
    /// The duplicate-check interval asked for, in seconds.
    #[serde(default)]
    pub duplicate_check_interval: Option<u64>,
    /// Unix milliseconds, on the fake's clock.
    pub at: i64,
}

/// Something the fake delivered on the service's behalf, as the live feed reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    Message(SentMessage),
    Welcome(SentWelcome),
}

/// A welcome message the service sent with a welcome code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentWelcome {
    pub welcome_code: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRemark {
    pub userid: String,
    pub external_userid: String,
    pub update: RemarkUpdate,
}

/// What a fault does to the call it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer HTTP 200 with this errcode.
    Errcode(i64),
    /// Answer with this HTTP status and no JSON.
    Http(u16),
}

/// The answer a service gave to a callback the fake sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackResponse {
    pub status: u16,
    pub body: String,
    /// The decrypted passive reply, when the body was one.
    pub reply: Option<String>,
}

/// A running fake WeCom; stops when dropped or on [`FakeWecom::stop`].
pub struct FakeWecom {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    feed: broadcast::Sender<Delivery>,
    crypto: WecomCrypto,
    fixture: Fixture,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the fixture's encoding_aes_key is invalid: {0}")]
    Key(#[from] super::crypto::KeyError),
    #[error("cannot deliver the callback: {0}")]
    Deliver(String),
}

impl FakeWecom {
    /// Starts on `addr` (port 0 for a free one).
    pub async fn start(fixture: Fixture, addr: SocketAddr) -> Result<Self, FakeError> {
        crate::install_crypto_provider();
        let crypto = WecomCrypto::new(
            SecretString::from(fixture.token.clone()),
            &fixture.encoding_aes_key,
            fixture.corp_id.clone(),
        )?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| FakeError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| FakeError::Bind { addr, source })?;
        let (feed, _) = broadcast::channel(1024);
        let state = Arc::new(Mutex::new(State::new(&fixture)));
        let router = routes::router(routes::Shared {
            state: state.clone(),
            feed: feed.clone(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            state,
            feed,
            crypto,
            fixture,
            shutdown: Some(shutdown),
            task: Some(task),
            http: reqwest::Client::new(),
        })
    }

    /// Starts on a free loopback port.
    pub async fn start_local(fixture: Fixture) -> Result<Self, FakeError> {
        Self::start(fixture, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The base URL to use as `wecom.api_base`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    pub fn crypto(&self) -> &WecomCrypto {
        &self.crypto
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// Every message delivered so far, oldest first.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.with_state(|s| s.messages.clone())
    }

    /// Messages delivered to one member.
    pub fn messages_to(&self, user: &str) -> Vec<SentMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.to_users.iter().any(|u| u == user))
            .collect()
    }

    /// A live feed of delivered messages and welcomes.
    pub fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.feed.subscribe()
    }

    pub fn welcomes(&self) -> Vec<SentWelcome> {
        self.with_state(|s| s.welcomes.clone())
    }

    pub fn remarks(&self) -> Vec<RecordedRemark> {
        self.with_state(|s| s.remarks.clone())
    }

    /// How many times each API was called (token errors included), by call name.
    pub fn call_counts(&self) -> HashMap<String, u32> {
        self.with_state(|s| s.calls.clone())
    }

    pub fn calls(&self, call: &str) -> u32 {
        self.with_state(|s| s.calls.get(call).copied().unwrap_or(0))
    }

    /// The most API calls that were ever in flight at once.
    pub fn max_concurrent_calls(&self) -> u32 {
        self.with_state(|s| s.max_in_flight)
    }

    /// Requests WeCom dropped as duplicates (`enable_duplicate_check`).
    pub fn suppressed_duplicates(&self) -> u32 {
        self.with_state(|s| s.suppressed_duplicates)
    }

    /// The time the fake keeps (message times, duplicate-check windows): the system's unless a test
    /// hands it a manual clock, shared with the service under test.
    pub fn use_clock(&self, clock: crate::clock::Clock) {
        self.with_state(|s| s.clock = clock);
    }

    /// Back to the fixture as it started — members, contacts, no messages, faults or duplicate
    /// windows — keeping issued tokens and the clock (for runs that reuse one fake).
    pub fn reset(&self) {
        let fixture = self.fixture.clone();
        self.with_state(|s| s.reset(&fixture));
    }

    /// Every issued token expires now: the next call with one gets 42001.
    pub fn expire_tokens(&self) {
        self.with_state(State::expire_tokens);
    }

    /// The next `count` calls (to `call`, or to any API but gettoken when `None`) fail this way.
    pub fn inject(&self, call: Option<&str>, kind: FaultKind, count: u32) {
        self.with_state(|s| s.add_fault(call.map(str::to_owned), kind, count));
    }

    /// Every answer is delayed by this much (zero to stop).
    pub fn set_delay(&self, delay: Duration) {
        self.with_state(|s| s.delay = delay);
    }

    /// Changes a member (e.g. status 5 when they leave), as an admin would in the console.
    pub fn set_member_status(&self, userid: &str, status: i32) {
        self.with_state(|s| s.set_member_status(userid, status));
    }

    /// Adds or replaces a member (a new hire, a changed one).
    pub fn upsert_member(&self, member: fixture::FixtureMember) {
        self.with_state(|s| s.upsert_member(member));
    }

    /// Removes a member entirely: WeCom then answers `user/get` with 60111.
    pub fn remove_member(&self, userid: &str) {
        self.with_state(|s| s.remove_member(userid));
    }

    /// Ends a relation without any callback (a deletion whose event was lost).
    pub fn end_relation(&self, external_userid: &str, userid: &str) {
        self.with_state(|s| s.end_relation(external_userid, userid));
    }

    /// Adds or replaces an external contact.
    pub fn upsert_contact(&self, detail: super::api::types::ExternalContactDetail) {
        self.with_state(|s| s.upsert_contact(detail));
    }

    /// Whom the sign-in page signs in when the browser carries no `fake_wecom_user` cookie (`None`:
    /// show a page to pick a member).
    pub fn sign_in_as(&self, signer: Option<Signer>) {
        self.with_state(|s| s.web.signer = signer);
    }

    /// The chat the sidebar is open in, when the browser carries no `fake_wecom_*` cookies.
    pub fn set_chat_context(&self, context: ChatContext) {
        self.with_state(|s| s.web.context = context);
    }

    /// A one-time sign-in code, as the sign-in page would issue it.
    pub fn issue_code(&self, signer: Signer) -> String {
        self.with_state(|s| s.web.issue_code(signer))
    }

    /// The URL that opens `page` as the WeCom client would: signed in as `userid`, in the chat
    /// with `external_userid` (the sidebar's `single_chat_tools`) when given.
    pub fn open_url(&self, userid: &str, external_userid: Option<&str>, page: &str) -> String {
        let enc = |t: &str| form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
        let contact = external_userid
            .map(|c| format!("&contact={}", enc(c)))
            .unwrap_or_default();
        format!(
            "{}/_fake/open?as={}{contact}&next={}",
            self.url(),
            enc(userid),
            enc(page)
        )
    }

    /// Where the stand-in for WeCom's JS-SDK is served (`web.jssdk_url` in tests and the demo).
    pub fn jssdk_url(&self) -> String {
        format!("{}/_fake/ww.js", self.url())
    }

    /// A click of `userid` on the button `key` of the card `task_id` (with `selected` = (question
    /// key, option id) from its drop-down list): the `template_card_event` callback, with a fresh
    /// response code, as WeCom would send it. Refused for a card that was not sent to `userid` or
    /// whose buttons no longer respond.
    pub fn card_click_event(
        &self,
        userid: &str,
        task_id: &str,
        key: &str,
        selected: Option<(&str, &str)>,
    ) -> Result<String, FakeError> {
        let code = self
            .with_state(|s| s.cards.click(userid, task_id))
            .map_err(FakeError::Deliver)?;
        let click = super::compose::CardClickEvent {
            from_user: userid,
            task_id,
            event_key: key,
            response_code: &code,
            selected,
        };
        let now = chrono::Utc::now().timestamp();
        Ok(super::compose::card_click(
            &self.fixture.corp_id,
            &click,
            self.fixture.agent_id,
            now,
        ))
    }

    /// Delivers a card click (from [`FakeWecom::card_click_event`]; again, for WeCom's retry) and
    /// applies a passive `update_button` reply to the clicker's card.
    pub async fn deliver_card_click(&self, target: &str, event_xml: &str) -> Result<CallbackResponse, FakeError> {
        let response = self.send_callback(target, event_xml).await?;
        if let Some(reply) = &response.reply
            && let Ok(fields) = super::xml::parse_fields(event_xml)
            && let Some(name) = update_button_text(reply)
        {
            let (task, user) = (
                fields.get("TaskId").unwrap_or_default().to_owned(),
                fields.get("FromUserName").unwrap_or_default().to_owned(),
            );
            self.with_state(|s| s.cards.replace_passively(&task, &user, &name));
        }
        Ok(response)
    }

    /// A click on a card's button, delivered: [`FakeWecom::card_click_event`], then
    /// [`FakeWecom::deliver_card_click`].
    pub async fn click_card(
        &self,
        target: &str,
        userid: &str,
        task_id: &str,
        key: &str,
        selected: Option<(&str, &str)>,
    ) -> Result<CallbackResponse, FakeError> {
        let event = self.card_click_event(userid, task_id, key, selected)?;
        self.deliver_card_click(target, &event).await
    }

    /// What `userid`'s copy of the card `task_id` shows instead of its buttons, once updated.
    pub fn card_replaced(&self, task_id: &str, userid: &str) -> Option<String> {
        self.with_state(|s| s.cards.replaced(task_id, userid))
    }

    /// Encrypts, signs and POSTs a callback to `target` (the service's `/wecom/callback` URL),
    /// exactly as WeCom does, and returns the answer.
    pub async fn send_callback(&self, target: &str, inner_xml: &str) -> Result<CallbackResponse, FakeError> {
        deliver_callback(
            &self.http,
            &self.crypto,
            &self.fixture.agent_id.to_string(),
            target,
            inner_xml,
        )
        .await
    }

    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for FakeWecom {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The text of a passive `update_button` reply.
pub fn update_button_text(reply_xml: &str) -> Option<String> {
    let fields = super::xml::parse_fields(reply_xml).ok()?;
    if fields.get("MsgType") != Some("update_button") {
        return None;
    }
    super::xml::nested_values(reply_xml, &["ReplaceName"])
        .ok()?
        .into_iter()
        .next()
        .map(|(_, name)| name)
}

/// Seals and posts one callback; shared by the fake and `wecom-scrm simulate`.
pub async fn deliver_callback(
    http: &reqwest::Client,
    crypto: &WecomCrypto,
    agent_id: &str,
    target: &str,
    inner_xml: &str,
) -> Result<CallbackResponse, FakeError> {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = rand::random::<u32>().to_string();
    let sealed = crypto.seal_callback(inner_xml, agent_id, &timestamp, &nonce);
    let response = http
        .post(target)
        .query(&[
            ("msg_signature", &sealed.msg_signature),
            ("timestamp", &sealed.timestamp),
            ("nonce", &sealed.nonce),
        ])
        .header("content-type", "text/xml; charset=utf-8")
        .body(sealed.body)
        .send()
        .await
        .map_err(|e| FakeError::Deliver(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| FakeError::Deliver(e.without_url().to_string()))?;
    let reply = if status == 200 && body.contains("<Encrypt>") {
        crypto.open_reply(&body).ok()
    } else {
        None
    };
    Ok(CallbackResponse { status, body, reply })
}

//! The web pages: sign-in through WeCom, the JS-SDK signatures, the customer's page and its JSON,
//! driven over HTTP like a browser (cookies kept, redirects followed one by one), and in a real
//! browser behind `--features browser-tests`.

#[cfg(feature = "browser-tests")]
mod browser;
mod card;
mod dashboard;
mod signin;

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, Response, StatusCode};
use wecom_scrm::config::Config;
use wecom_scrm::wecom::fake::Signer;

use crate::helpers::{TestApp, http_client, spawn_imported};

/// `GET /api/v1/forecast` with a manager token of `leader`: the figures their dashboard must show.
pub async fn forecast_as_leader(app: &TestApp, leader: &str) -> serde_json::Value {
    let now = wecom_scrm::db::now_ms();
    let token = wecom_scrm::tokens::create(&app.db, &format!("{leader}-app"), "manager", Some(leader), now)
        .await
        .unwrap()
        .token;
    app.client
        .get(app.url("/api/v1/forecast"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A port free right now, so the app's public URL can be configured before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The app with the test org imported and its web pages on at its own address, signing in
/// through the fake WeCom.
pub async fn spawn_web(configure: impl FnOnce(&mut Config)) -> TestApp {
    let port = free_port();
    let app = spawn_imported(|config| {
        config.server.addr = format!("127.0.0.1:{port}");
        config.web.public_url = format!("http://127.0.0.1:{port}");
        configure(config);
    })
    .await;
    assert_eq!(app.base_url, format!("http://127.0.0.1:{port}"));
    app
}

/// A browser, as far as HTTP goes: it keeps cookies (per host, as browsers do — the app and the
/// fake WeCom share 127.0.0.1) and follows redirects one at a time.
pub struct Browser {
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    /// Every `Set-Cookie` seen, as sent.
    pub set_cookies: Mutex<Vec<String>>,
}

impl Browser {
    pub fn new() -> Self {
        let _ = http_client();
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::new(BTreeMap::new()),
            set_cookies: Mutex::new(Vec::new()),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().unwrap().insert(name.into(), value.into());
    }

    fn remember(&self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap().to_owned();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = text.contains("Max-Age=0");
            let mut jar = self.cookies.lock().unwrap();
            if expired {
                jar.remove(name);
            } else {
                jar.insert(name.into(), value.into());
            }
            self.set_cookies.lock().unwrap().push(text);
        }
    }

    pub async fn request(&self, method: Method, url: &str, body: Option<serde_json::Value>, csrf: bool) -> Response {
        let cookies: Vec<String> = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut request = self.http.request(method, url);
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies.join("; "));
        }
        if csrf && let Some(token) = self.cookie("scrm_csrf") {
            request = request.header("x-csrf-token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        self.remember(&response);
        response
    }

    pub async fn get(&self, url: &str) -> Response {
        self.request(Method::GET, url, None, false).await
    }

    /// GETs `url` and follows redirects; returns the last answer and every URL visited.
    pub async fn open(&self, url: &str) -> (Response, Vec<String>) {
        let mut visited = vec![url.to_owned()];
        let mut response = self.get(url).await;
        for _ in 0..10 {
            if !response.status().is_redirection() {
                break;
            }
            let next = response.headers()[LOCATION].to_str().unwrap().to_owned();
            // The fragment (`#wechat_redirect`) stays in the browser.
            let next = next.split('#').next().unwrap().to_owned();
            visited.push(next.clone());
            response = self.get(&next).await;
        }
        (response, visited)
    }

    /// A write from the page: JSON with the session's CSRF token.
    pub async fn send(&self, method: Method, url: &str, body: serde_json::Value) -> Response {
        self.request(method, url, Some(body), true).await
    }
}

/// A browser signed in as `userid` (through the fake's sign-in page, as in WeCom).
pub async fn signed_in(app: &TestApp, userid: &str) -> Browser {
    let browser = Browser::new();
    app.fake().sign_in_as(Some(Signer::Member(userid.into())));
    let (response, visited) = browser.open(&app.url("/web/sidebar")).await;
    assert_eq!(response.status(), StatusCode::OK, "{visited:?}");
    assert!(browser.cookie("scrm_session").is_some());
    browser
}

//! The pages in a real browser: headless Chromium driven through chromedriver (WebDriver). A rep
//! opens the sidebar in the chat with a customer (the fake WeCom plays the client: sign-in, the
//! JS-SDK and its signature checks), sees the card, adds a note and a reminder through the page,
//! sets the stage and a tag, and the test finds them in the database and in `详情` by chat; a leader
//! opens the dashboard, whose figures are the forecast API's, and a rep is refused it. Opt-in
//! (`--features browser-tests`); a missing browser or driver fails with its name. Set
//! `SCRM_SCREENSHOT_TO` / `SCRM_DASHBOARD_SCREENSHOT_TO` to keep the 360 × 740 screenshots (the
//! README's).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use wecom_scrm::db::entity::{follow_up, reminder};

use super::{forecast_as_leader, free_port, spawn_web};
use crate::helpers::customer_id;

/// The named binary, from `env` if set, else the first of `candidates` found; panics naming it.
fn require(env: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for name in candidates {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "browser tests need `{}` (or {env}): install the Debian packages chromium, chromium-driver and fonts-wqy-microhei",
        candidates[0]
    );
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let binary = require("SCRM_CHROMEDRIVER", &["chromedriver"]);
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // A real wait: the driver is another process that takes a moment to listen.
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let chromium = require("SCRM_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=360,740", "--lang=zh-CN"],
            // The sidebar's size: about 360 px wide.
            "mobileEmulation": { "deviceMetrics": { "width": 360, "height": 740, "pixelRatio": 1.0 } },
            "prefs": { "intl.accept_languages": "zh-CN,zh" },
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// Waits (as a browser user would) for an element whose text contains `text`.
async fn wait_for_text(client: &Client, css: &str, text: &str) {
    let xpath = format!(
        "//*[contains(concat(' ', normalize-space(@class), ' '), ' {css} ') or @id='{css}'][contains(., '{text}')]"
    );
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no {css} with “{text}”: {e}"));
}

#[tokio::test]
async fn a_rep_opens_the_sidebar_in_a_customer_chat_and_works_from_it() {
    let app = spawn_web(|_| {}).await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    let result = drive(&app, &client).await;
    let _ = client.close().await;
    result.unwrap();

    // What the page stored is the chat's: in the database and in `详情`.
    let id = customer_id(&app, "wmC1").await;
    let notes = follow_up::Entity::find()
        .filter(follow_up::Column::CustomerId.eq(id))
        .all(&app.db)
        .await
        .unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.content == "浏览器里记的跟进" && n.author_userid == "rep1")
    );
    let reminders = reminder::Entity::find()
        .filter(reminder::Column::CustomerId.eq(id))
        .all(&app.db)
        .await
        .unwrap();
    let set = reminders
        .iter()
        .find(|r| r.text == "浏览器里设的提醒")
        .expect("the reminder");
    assert_eq!(set.owner_userid, "rep1");
    let due = chrono::DateTime::from_timestamp_millis(set.due_at)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai);
    assert_eq!(due.format("%H:%M").to_string(), "10:00");
    let info = app.say("rep1", "详情 张伟").await;
    assert!(
        info.contains("浏览器里记的跟进") && info.contains("浏览器里设的提醒"),
        "{info}"
    );
    assert!(info.contains("阶段：需求确认") && info.contains("VIP"), "{info}");
}

async fn drive(app: &crate::helpers::TestApp, client: &Client) -> Result<(), fantoccini::error::CmdError> {
    // The WeCom client opens the sidebar in the chat with 张伟, signed in as 张三.
    let open = app.fake().open_url("rep1", Some("wmC1"), &app.url("/web/sidebar"));
    client.goto(&open).await?;
    wait_for_text(client, "customer-name", "张伟").await;
    let url = client.current_url().await?;
    assert!(url.path().ends_with("/web/customers/wmC1"), "{url}");
    assert!(client.source().await?.contains("2026上海展会") || client.source().await?.contains("expo"));

    client
        .find(Locator::Css("#note-text"))
        .await?
        .send_keys("浏览器里记的跟进")
        .await?;
    client.find(Locator::Css("#note-save")).await?.click().await?;
    wait_for_text(client, "follow-up", "浏览器里记的跟进").await;

    client
        .find(Locator::Css("#reminder-at"))
        .await?
        .send_keys("明天上午10点")
        .await?;
    client
        .find(Locator::Css("#reminder-text"))
        .await?
        .send_keys("浏览器里设的提醒")
        .await?;
    client.find(Locator::Css("#reminder-save")).await?.click().await?;
    wait_for_text(client, "reminder", "浏览器里设的提醒").await;

    client
        .find(Locator::Css("#stage"))
        .await?
        .select_by_value("需求确认")
        .await?;
    wait_for_text(client, "stage-value", "需求确认").await;
    client.find(Locator::Css("#tag-new")).await?.send_keys("VIP").await?;
    client.find(Locator::Css("#tag-add")).await?.click().await?;
    wait_for_text(client, "tags", "VIP").await;

    client.execute("window.scrollTo(0, 0)", vec![]).await?;
    let png = client.screenshot().await?;
    let keep = std::env::var("SCRM_SCREENSHOT_TO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sidebar.png"));
    std::fs::write(&keep, png).expect("the screenshot is written");
    Ok(())
}

#[tokio::test]
async fn a_leader_opens_the_dashboard_and_its_figures_are_the_forecast_s() {
    let app = spawn_web(|_| {}).await;
    for (who, line) in [
        ("rep1", "商机 @张伟 50万 月底 二期项目"),
        ("rep1", "阶段 @张伟 方案报价"),
        ("rep1", "记 @张伟 方案已发，等反馈"),
        ("rep1", "商机 @刘洋 30万 下个月15号 扩容"),
        ("rep1", "阶段 @刘洋 商务谈判"),
        ("rep2", "商机 @刘洋 8万 备件"),
        ("rep2", "记 @刘洋 已付款"),
    ] {
        app.say(who, line).await;
    }
    app.say("rep2", "赢单 @刘洋").await;
    app.say("rep2", "1").await;
    let api = forecast_as_leader(&app, "lead1").await;
    let driver = Driver::start();
    let client = browser(&driver).await;
    let result = dashboard(&app, &client, &api).await;
    let _ = client.close().await;
    result.unwrap();
}

async fn dashboard(
    app: &crate::helpers::TestApp,
    client: &Client,
    api: &serde_json::Value,
) -> Result<(), fantoccini::error::CmdError> {
    client
        .goto(&app.fake().open_url("lead1", None, &app.url("/web/dashboard")))
        .await?;
    wait_for_text(client, "summary", &api["forecast"]["open_deals"].to_string()).await;
    let summary = client.find(Locator::Css("#summary")).await?;
    assert_eq!(
        summary.attr("data-open-deals").await?.as_deref(),
        Some(api["forecast"]["open_deals"].to_string().as_str())
    );
    assert_eq!(
        summary.attr("data-weighted-fen").await?.as_deref(),
        Some(api["forecast"]["months"][0]["weighted_fen"].to_string().as_str())
    );
    let bars = client.find_all(Locator::Css("#funnel svg rect")).await?;
    assert_eq!(bars.len(), api["forecast"]["pipeline"].as_array().unwrap().len());
    wait_for_text(client, "reps", "张三").await;
    let png = client.screenshot().await?;
    let keep = std::env::var("SCRM_DASHBOARD_SCREENSHOT_TO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"));
    std::fs::write(&keep, png).expect("the screenshot is written");
    // A rep is no manager: refused (signed out first: the session is the leader's).
    client.delete_all_cookies().await?;
    client
        .goto(&app.fake().open_url("rep1", None, &app.url("/web/dashboard")))
        .await?;
    wait_for_text(client, "message", "只有负责人可以查看").await;
    Ok(())
}

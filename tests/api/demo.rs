//! The newcomer's tools through the real binary: `demo`, `simulate` and `fake-wecom`.

use std::process::Command;

use reqwest::StatusCode;
use secrecy::SecretString;
use wecom_scrm::config::WecomConfig;
use wecom_scrm::wecom::api::{MessageBody, WecomClient};
use wecom_scrm::wecom::fake::Fixture;

use crate::cli::{command, output};
use crate::helpers::*;

/// `wecom-scrm demo` on this test's database, on a free port; returns the process and its service URL.
fn start_demo(db: &TestDb, dir: &tempfile::TempDir) -> (Running, String) {
    let database = if db.is_postgres() {
        db.url.clone()
    } else {
        format!("sqlite://{}/demo.db?mode=rwc", dir.path().display())
    };
    // The demo imports its team's customers at start, so its jobs run.
    // A loaded CI machine may take longer than the default 2 s to answer; WeCom waits 5 s.
    let demo = Running::spawn(
        command(db, dir)
            .env("SCRM_JOBS__ENABLED", "true")
            .env("SCRM_BOT__REPLY_BUDGET_MS", "4500")
            .args(["demo", "--addr", "127.0.0.1:0", "--database", &database]),
    );
    let line = demo.wait_for_stdout(|l| l.trim_start().starts_with("service"));
    let url = line.split_whitespace().nth(1).unwrap().to_owned();
    (demo, url)
}

fn simulate(dir: &tempfile::TempDir, url: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .args(["simulate", "--demo", "--url", &format!("{url}/wecom/callback")])
        .args(args);
    output(&mut cmd)
}

#[tokio::test]
async fn demo_and_simulate_work_together() {
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let (mut demo, url) = start_demo(&db, &dir);
    let banner = demo.stdout();
    assert!(
        banner.contains("fake WeCom") && banner.contains("张三 (zhangsan)"),
        "{banner}"
    );
    assert!(
        banner.contains("simulate --demo"),
        "the banner shows how to play: {banner}"
    );
    assert_eq!(
        http_client()
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The first start imports the team's customers; chat once it has.
    demo.wait_for_stderr(|l| l.contains("customer import finished"));
    let (code, stdout, stderr) = simulate(&dir, &url, &["text", "--from", "zhangsan", "帮助"]);
    assert_eq!(code, 0, "{stderr}");
    if !stdout.starts_with("HTTP 200\nreply: 可用命令") {
        // Past the reply budget (a loaded machine) the one answer goes through the message API,
        // which the demo prints.
        assert_eq!(stdout.trim(), "HTTP 200", "{stdout}");
        demo.wait_for_stdout(|l| l.contains("可用命令"));
    }

    let (code, stdout, _) = simulate(
        &dir,
        &url,
        &[
            "--times",
            "3",
            "add-contact",
            "--user",
            "zhangsan",
            "--external",
            "wmDemoProspect01",
            "--state",
            "expo2026_booth3",
            "--welcome-code",
            "W1",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(stdout.matches("HTTP 200").count(), 3);
    // The demo prints what the service pushed: the welcome and the rep's notice, once.
    demo.wait_for_stdout(|l| l.contains("您好孙丽，感谢在展会上扫码！我是张三"));
    demo.wait_for_stdout(|l| l.contains("🆕 新客户：孙丽(京东)"));
    demo.wait_for_stdout(|l| l.contains("来源：2026上海展会3号展位"));

    for args in [
        vec!["del-follow-user", "--user", "lisi", "--external", "wmDemoCustomer0004"],
        vec!["del-contact", "--user", "lisi", "--external", "wmDemoCustomer0005"],
        vec!["user-deleted", "--user", "wangwu"],
        vec!["edit-contact", "--user", "zhangsan", "--external", "wmDemoCustomer0001"],
        vec![
            "event",
            "--from",
            "zhangsan",
            "--event",
            "click",
            "--key",
            "DAILY_SUMMARY",
        ],
    ] {
        let (code, stdout, stderr) = simulate(&dir, &url, &args);
        assert_eq!((code, stdout.trim()), (0, "HTTP 200"), "{args:?}: {stderr}");
    }

    demo.wait_for_stdout(|l| l.contains("⚠️ 客户流失：杨帆 删除了 李四"));
    demo.wait_for_stdout(|l| l.contains("📥 王五 已离职"));
    assert_eq!(
        demo.stdout().matches("🆕 新客户：孙丽").count(),
        1,
        "retries announce nothing twice"
    );

    // Retries were deduplicated: one row per distinct callback.
    let db_url = if db.is_postgres() {
        db.url.clone()
    } else {
        format!("sqlite://{}/demo.db?mode=rwc", dir.path().display())
    };
    let rows = wecom_scrm::inbox::list(
        &wecom_scrm::db::connect(&wecom_scrm::config::DatabaseConfig {
            url: SecretString::from(db_url),
            schema: db.schema.clone(),
            ..Default::default()
        })
        .await
        .unwrap(),
        None,
        100,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 7, "{rows:#?}");
    assert_eq!(demo.terminate(), 0);
}

#[test]
fn simulate_reports_refusals_and_an_unreachable_service() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let (code, _, stderr) = simulate(&dir, "http://127.0.0.1:9", &["text", "--from", "zhangsan", "hi"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is the service running"), "{stderr}");

    // Without --demo the configured credentials are required, and named when missing.
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .args(["simulate", "text", "--from", "zhangsan", "hi"]);
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("SCRM_WECOM__TOKEN") && stderr.contains("SCRM_WECOM__ENCODING_AES_KEY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn simulate_with_other_credentials_is_refused_by_the_service() {
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let (mut demo, url) = start_demo(&db, &dir);
    // The test credentials, not the demo's: the service answers 401.
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("SCRM_WECOM__CORP_ID", CORP_ID)
        .env("SCRM_WECOM__TOKEN", TOKEN)
        .env("SCRM_WECOM__ENCODING_AES_KEY", AES_KEY)
        .args([
            "simulate",
            "--url",
            &format!("{url}/wecom/callback"),
            "text",
            "--from",
            "zhangsan",
            "hi",
        ]);
    let (code, stdout, _) = output(&mut cmd);
    assert_eq!(code, 1);
    assert!(stdout.contains("HTTP 401"), "{stdout}");
    assert_eq!(demo.terminate(), 0);
}

#[tokio::test]
async fn fake_wecom_runs_alone_and_prints_what_it_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .args(["fake-wecom", "--addr", "127.0.0.1:0"]);
    let mut fake = Running::spawn(&mut cmd);
    let line = fake.wait_for_stdout(|l| l.starts_with("fake WeCom listening on"));
    let url = line.split_whitespace().nth(4).unwrap().to_owned();
    assert!(fake.stdout().contains("SCRM_WECOM__API_BASE="));

    let fixture = Fixture::demo();
    let config = WecomConfig {
        corp_id: fixture.corp_id.clone(),
        agent_id: fixture.agent_id,
        secret: SecretString::from(fixture.secret.clone()),
        api_base: url.clone(),
        ..WecomConfig::default()
    };
    let client = WecomClient::new(&config, test_cache().await);
    client
        .send_to_user("zhangsan", MessageBody::text("⏰ 提醒：15:00 回电话 · 张伟"), None)
        .await
        .unwrap();
    fake.wait_for_stdout(|l| l.contains("📨 → 张三 (zhangsan) [text]"));
    fake.wait_for_stdout(|l| l.contains("⏰ 提醒：15:00 回电话 · 张伟"));

    let http = http_client();
    let sent: serde_json::Value = http
        .get(format!("{url}/_fake/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent.as_array().unwrap().len(), 1);
    // Faults can be injected from outside.
    let status = http
        .post(format!("{url}/_fake/faults"))
        .json(&serde_json::json!({ "call": "user/get", "errcode": 60011, "count": 1 }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(client.get_user("zhangsan").await.unwrap_err().code(), Some(60011));
    assert_eq!(fake.terminate(), 0);
}

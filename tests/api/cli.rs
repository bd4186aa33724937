//! The real binary: help, migrate, configuration errors, serve with SIGTERM, and `inbox`.

use std::process::Command;

use reqwest::StatusCode;
use wecom_scrm::wecom::compose;

use migration::MigratorTrait;

use crate::helpers::*;

pub use crate::helpers::binary_command as command;

/// Runs the binary without blocking the test's runtime (which may be serving a fake WeCom).
pub async fn output_async(mut cmd: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || output(&mut cmd))
        .await
        .expect("the command ran")
}

pub fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_commands() {
    let (code, stdout, _) = output(Command::new(BIN).arg("--help"));
    assert_eq!(code, 0);
    for word in ["serve", "migrate", "inbox", "--config"] {
        assert!(stdout.contains(word), "{word} missing from:\n{stdout}");
    }
    let (code, stdout, _) = output(Command::new(BIN).args(["inbox", "retry", "--help"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("--failed"));
}

#[test]
fn migrate_applies_then_finds_nothing_to_do() {
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let (code, stdout, stderr) = output(command(&db, &dir).arg("migrate"));
    assert_eq!(code, 0, "{stderr}");
    let all = migration::Migrator::migrations().len();
    assert!(stdout.contains(&format!("migrations applied: {all}")), "{stdout}");
    let (code, stdout, _) = output(command(&db, &dir).arg("migrate"));
    assert_eq!(code, 0);
    assert!(stdout.contains("migrations applied: 0"), "{stdout}");
}

#[test]
fn the_default_sqlite_file_is_created_with_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path()).env_clear().arg("migrate");
    let (code, _, stderr) = output(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("data/wecom-scrm.db").exists());
}

#[test]
fn a_wrong_value_fails_start_up_naming_the_key() {
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let (code, _, stderr) = output(
        command(&db, &dir)
            .env("SCRM_WECOM__ENCODING_AES_KEY", "tooshort")
            .arg("serve"),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("SCRM_WECOM__ENCODING_AES_KEY"), "{stderr}");
    assert!(stderr.contains("43 characters of base64"), "{stderr}");
    assert!(!stderr.contains("test-app-secret"), "secrets never printed: {stderr}");

    let (code, _, stderr) = output(command(&db, &dir).env("SCRM_WECOM__AGENT_ID", "abc"));
    assert_eq!(code, 2);
    assert!(stderr.to_lowercase().contains("agent_id"), "{stderr}");

    let (code, _, stderr) = output(command(&db, &dir).env("SCRM_WECOM__CORPID", "typo"));
    assert_eq!(code, 2);
    assert!(stderr.contains("corpid"), "unknown keys are refused: {stderr}");

    let (code, _, stderr) = output(command(&db, &dir).args(["--config", "missing.toml", "migrate"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn a_config_file_is_layered_under_the_environment() {
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("scrm.toml"), "[org]\ntimezone = \"Nowhere/Land\"\n").unwrap();
    let (code, _, stderr) = output(command(&db, &dir).args(["--config", "scrm.toml", "migrate"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("SCRM_ORG__TIMEZONE"), "{stderr}");
    let (code, _, stderr) = output(
        command(&db, &dir)
            .args(["--config", "scrm.toml", "migrate"])
            .env("SCRM_ORG__TIMEZONE", "Asia/Shanghai"),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test]
async fn serve_stores_callbacks_and_stops_cleanly_on_sigterm_then_inbox_commands_work() {
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let mut server = Running::spawn(command(&db, &dir).arg("serve"));
    let listening = server.wait_for_stderr(|line| line.contains("\"wecom-scrm listening\""));
    let addr = serde_json::from_str::<serde_json::Value>(&listening).unwrap()["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = http_client();
    let base = format!("http://{addr}");
    assert_eq!(
        client.get(format!("{base}/readyz")).send().await.unwrap().status(),
        StatusCode::OK
    );

    let crypto = crypto();
    let inner = compose::text_message(
        CORP_ID,
        "zhangsan",
        "记 张总 回电话",
        next_msg_id(),
        AGENT_ID,
        now_secs(),
    );
    let sealed = crypto.seal_callback(&inner, "1000002", &now_secs().to_string(), "42");
    let response = client
        .post(format!("{base}/wecom/callback"))
        .query(&[
            ("msg_signature", &sealed.msg_signature),
            ("timestamp", &sealed.timestamp),
            ("nonce", &sealed.nonce),
        ])
        .body(sealed.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.terminate(), 0, "graceful exit on SIGTERM");

    let (code, stdout, stderr) = output(command(&db, &dir).args(["inbox", "list"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("text") && stdout.contains("zhangsan"), "{stdout}");
    assert!(stdout.contains("ignored") || stdout.contains("pending"), "{stdout}");
    let (code, stdout, _) = output(command(&db, &dir).args(["inbox", "list", "--status", "failed"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("no rows"), "{stdout}");
    let (code, _, stderr) = output(command(&db, &dir).args(["inbox", "list", "--status", "weird"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("pending, processing, processed, ignored, failed"),
        "{stderr}"
    );

    let (code, stdout, _) = output(command(&db, &dir).args(["inbox", "retry", "--failed"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("0 failed row(s) re-queued"), "{stdout}");
    let (code, stdout, _) = output(command(&db, &dir).args(["inbox", "retry", "1"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("row 1 re-queued"), "{stdout}");
    let (code, _, stderr) = output(command(&db, &dir).args(["inbox", "retry", "999999"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no row 999999"), "{stderr}");
    let (code, _, _) = output(command(&db, &dir).args(["inbox", "retry"]));
    assert_eq!(code, 2, "either an id or --failed is required");
}

#[test]
fn parse_time_prints_the_instant_and_the_rest_or_fails_with_exit_2() {
    let (code, stdout, _) =
        output(Command::new(BIN).args(["parse-time", "--now", "2026-11-25T10:00:00+08:00", "明天下午3点 回电话"]));
    assert_eq!(code, 0);
    assert_eq!(stdout, "2026-11-26T15:00:00+08:00\n回电话\n");
    let (code, stdout, _) = output(Command::new(BIN).args([
        "parse-time",
        "--now",
        "2026-11-25T10:00:00+08:00",
        "--tz",
        "Europe/Berlin",
        "in 90 min",
    ]));
    assert_eq!(code, 0);
    assert_eq!(stdout, "2026-11-25T04:30:00+01:00\n\n");
    let (code, stdout, stderr) =
        output(Command::new(BIN).args(["parse-time", "--now", "2026-11-25T10:00:00+08:00", "昨天下午3点"]));
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("already passed"), "{stderr}");
    let (code, _, stderr) = output(Command::new(BIN).args(["parse-time", "回电话"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("could not find a time"), "{stderr}");
}

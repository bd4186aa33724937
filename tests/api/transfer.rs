//! Customers in and out as CSV, through the admin API and the command line: the export Excel
//! opens, leads imported row by row with a report, and the same file imported twice.

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use wecom_scrm::db::entity::{audit, customer, reminder};

use crate::admin_api::spawn_with;
use crate::cli::{command, output_async};
use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

const CARDS: &str = "姓名,公司,电话,渠道,负责人,备注\n\
王芳,比亚迪,138-0000-1001,fair,rep1,展台A\n\
赵磊,\"宁德时代, 福建\",+86 139 0000 1002,,张三,\n\
,无名公司,13700001003,,rep1,\n\
孙丽,小米,13700001004,,nobody,\n\
周杰,OPPO,call me,,rep1,\n\
钱进,vivo,13700001006,no-such-channel,rep1,\n\
王芳,比亚迪,13800001001,,rep1,\n\
李娜,华为,,,rep3,\n";

/// The admin API's test app, with a `fair` channel that starts the hot plan.
async fn spawn() -> (TestApp, String, String) {
    spawn_with(|c| {
        c.channels = vec![wecom_scrm::config::ChannelSeed {
            state: "fair".into(),
            name: "广交会".into(),
            welcome: None,
            plan: Some("hot".into()),
            assign: None,
        }];
    })
    .await
}

pub async fn import(app: &TestApp, token: &str, csv: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/import/customers"))
        .bearer_auth(token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn export(app: &TestApp, token: &str, query: &str) -> String {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/export/customers.csv{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM first");
    String::from_utf8(bytes[3..].to_vec()).unwrap()
}

fn rejected(report: &Value) -> Vec<(u64, String)> {
    report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn business_cards_are_imported_row_by_row_and_a_second_import_changes_nothing() {
    let (app, admin, _) = spawn().await;
    let (status, report) = import(&app, &admin, CARDS).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"], 8, "{report}");
    assert_eq!(report["created"], 3, "{report}");
    let lines: Vec<(u64, String)> = [(4, "姓名"), (5, "负责人"), (6, "电话"), (7, "渠道"), (8, "姓名")]
        .iter()
        .map(|(l, f)| (*l, (*f).to_owned()))
        .collect();
    assert_eq!(rejected(&report), lines, "{report}");
    assert!(
        report["rejected"][4]["reason"].as_str().unwrap().contains("line 2"),
        "the same phone twice: {report}"
    );

    let wang = customer::Entity::find()
        .filter(customer::Column::Name.eq("王芳"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("王芳 imported");
    assert_eq!(
        (
            wang.corp_name.as_str(),
            wang.phone.as_str(),
            wang.owner_userid.as_deref()
        ),
        ("比亚迪", "13800001001", Some("rep1"))
    );
    assert_eq!(wang.first_state.as_deref(), Some("fair"));
    assert_eq!(wang.lead_status.as_deref(), Some("hot"), "the channel's plan status");
    let plan = reminder::Entity::find()
        .filter(reminder::Column::CustomerId.eq(wang.id))
        .count(&app.db)
        .await
        .unwrap();
    assert!(plan > 0, "the hot plan's reminders were created");
    let zhao = customer::Entity::find()
        .filter(customer::Column::Name.eq("赵磊"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zhao.corp_name, "宁德时代, 福建");
    assert_eq!(zhao.owner_userid.as_deref(), Some("rep1"), "owner by display name");
    assert_eq!(zhao.phone, "+8613900001002");
    let imports = audit::Entity::find()
        .filter(audit::Column::Action.eq("customer.import"))
        .filter(audit::Column::Actor.eq("token:ops"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(imports, 3);

    // The owner finds the new lead in chat.
    let card = app.say("rep1", "查 王芳").await;
    assert!(card.contains("王芳"), "{card}");

    let (_, again) = import(&app, &admin, CARDS).await;
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    let customers = customer::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(customers, 6, "3 from WeCom and 3 imported, once");
}

#[tokio::test]
async fn an_export_in_chinese_imports_back_unchanged_and_corrections_apply() {
    let (app, admin, _) = spawn().await;
    import(&app, &admin, CARDS).await;
    let csv = export(&app, &admin, "").await;
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("客户ID,姓名,公司,职位,电话,负责人,阶段,状态")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert!(rows.iter().any(|r| r.contains("\"宁德时代, 福建\"")), "{csv}");
    assert!(rows.iter().any(|r| r.contains(",张伟,华为,")), "{csv}");

    let with_bom = format!("\u{feff}{csv}");
    let (status, report) = import(&app, &admin, &with_bom).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["unchanged"], 6, "{report}");

    let corrected = csv.replace(",比亚迪,", ",比亚迪汽车,");
    let (_, report) = import(&app, &admin, &corrected).await;
    assert_eq!(
        (report["updated"].as_u64(), report["unchanged"].as_u64()),
        (Some(1), Some(5)),
        "{report}"
    );
    let filtered = export(&app, &admin, "?channel=fair").await;
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert!(filtered.contains("比亚迪汽车"), "{filtered}");
}

#[tokio::test]
async fn a_manager_imports_and_exports_within_their_departments_only() {
    let (app, admin, manager) = spawn().await;
    let (_, report) = import(&app, &manager, CARDS).await;
    assert!(
        rejected(&report).contains(&(9, "负责人".to_owned())),
        "rep3 is 销售二部's: {report}"
    );
    assert_eq!(report["created"], 2, "{report}");
    let csv = export(&app, &manager, "").await;
    assert!(!csv.contains("陈静"), "{csv}");
    assert!(csv.contains("王芳"), "{csv}");

    let (status, problem) = import(&app, &admin, "公司,电话\n华为,1380000\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem["detail"].as_str().unwrap().contains("姓名"), "{problem}");
    let response = app
        .client
        .post(app.url("/api/v1/import/customers"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("--data-binary"),
        "{problem}"
    );
    // A file sent as plain bytes is read as CSV too.
    let response = app
        .client
        .post(app.url("/api/v1/import/customers"))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .body("姓名,负责人\n新客户,rep1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = import(&app, "scrm_000000000000_x", CARDS).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_command_line_imports_with_a_report_and_exports_to_a_file() {
    let (app, _, _) = spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let cards = dir.path().join("cards.csv");
    std::fs::write(&cards, CARDS).unwrap();
    let mut cmd = command(&app.test_db, &dir);
    cmd.arg("import").arg(&cards);
    let (code, stdout, stderr) = output_async(cmd).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("8 rows: 3 created, 0 updated, 0 unchanged, 5 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 5: 负责人: no active member \"nobody\""),
        "{stdout}"
    );
    assert!(stderr.contains("8/8 rows"), "progress: {stderr}");
    let by_cli = audit::Entity::find()
        .filter(audit::Column::Actor.eq("cli"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(by_cli, 3);

    let out = dir.path().join("customers.csv");
    let mut cmd = command(&app.test_db, &dir);
    cmd.arg("export").arg("--out").arg(&out).args(["--owner", "rep1"]);
    let (code, _, stderr) = output_async(cmd).await;
    assert_eq!(code, 0, "{stderr}");
    let owned = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.eq("rep1"))
        .count(&app.db)
        .await
        .unwrap();
    assert!(stderr.contains(&format!("exported {owned} customers")), "{stderr}");
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("王芳") && text.contains("张伟"), "{text}");

    let mut cmd = command(&app.test_db, &dir);
    cmd.arg("import").arg(dir.path().join("missing.csv"));
    assert_eq!(output_async(cmd).await.0, 2);
}

#[tokio::test]
async fn a_lead_becomes_the_wecom_contact_who_adds_a_rep_with_its_phone() {
    // 王芳 from the fair adds rep2 on WeChat as 芳芳; rep2 notes her number.
    let mut fixture = test_fixture();
    let mut card = contact("wmCard", "芳芳", "", &[("rep2", "王芳 比亚迪", "")]);
    card.follow_user[0].remark_mobiles = vec!["13800001001".into()];
    fixture.external_contacts = vec![card];
    let app = TestApp::spawn_with_fake(fixture, |c| {
        c.channels = vec![wecom_scrm::config::ChannelSeed {
            state: "fair".into(),
            name: "广交会".into(),
            welcome: None,
            plan: None,
            assign: None,
        }];
    })
    .await;
    wecom_scrm::sync::sync_org(&app.services(), &wecom_scrm::crm::audit::Actor::Sync, &mut |_| {})
        .await
        .unwrap();
    let now = wecom_scrm::db::now_ms();
    let admin = wecom_scrm::tokens::create(&app.db, "ops", "admin", None, now)
        .await
        .unwrap()
        .token;
    let (_, report) = import(&app, &admin, CARDS).await;
    assert_eq!(report["created"], 3, "{report}");

    let row = app.deliver(&add_event("rep2", "wmCard", None, None)).await;
    assert_eq!(row.status, InboxStatus::Processed, "{row:?}");
    let linked = customer_by_external(&app, "wmCard").await;
    assert_eq!(linked.phone, "13800001001", "the imported lead, not a new customer");
    assert_eq!(linked.owner_userid.as_deref(), Some("rep1"), "the lead keeps its owner");
    assert_eq!(linked.first_state.as_deref(), Some("fair"), "and its lead source");
    assert_eq!(customer::Entity::find().count(&app.db).await.unwrap(), 3);
    let links = audit::Entity::find()
        .filter(audit::Column::Action.eq("customer.link"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(links, 1);
    let csv = export(&app, &admin, "").await;
    assert!(
        csv.lines().any(|l| l.contains("王芳") || l.contains("芳芳")) && csv.contains(",wmCard"),
        "{csv}"
    );
}

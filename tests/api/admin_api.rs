//! The admin REST API end to end: tokens from the command line, bearer auth, both roles' scopes,
//! problem details for bad input, channel writes in the audit log, and the OpenAPI document.

use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::db::entity::{audit, customer};
use wecom_scrm::sync;
use wecom_scrm::tokens;

use crate::cli::{command, output_async};
use crate::helpers::*;

/// The app with the test org and its customers synced from the fake WeCom, and one token of
/// each role: an admin, and a manager acting for lead1 (销售一部: rep1, rep2).
pub async fn spawn_with(configure: impl FnOnce(&mut wecom_scrm::config::Config)) -> (TestApp, String, String) {
    let app = TestApp::spawn_with_fake(test_fixture(), configure).await;
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();
    let now = wecom_scrm::db::now_ms();
    let admin = tokens::create(&app.db, "ops", "admin", None, now).await.unwrap().token;
    let manager = tokens::create(&app.db, "lead1-app", "manager", Some("lead1"), now)
        .await
        .unwrap()
        .token;
    (app, admin, manager)
}

async fn spawn() -> (TestApp, String, String) {
    spawn_with(|_| {}).await
}

pub async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn send(app: &TestApp, method: reqwest::Method, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The fields a problem document names, in order.
fn error_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

fn names(page: &Value) -> Vec<String> {
    let mut names: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_missing_wrong_or_revoked_token_is_401_with_problem_details() {
    let (app, admin, _) = spawn().await;
    let response = app.client.get(app.url("/api/v1/customers")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 401);
    assert_eq!(problem["type"], "/api/v1/problems/unauthorized");

    let mut tampered = admin.clone();
    tampered.pop();
    tampered.push(if admin.ends_with('A') { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "scrm_000000000000_nope", "not-a-token", ""] {
        assert_eq!(
            get(&app, bad, "/api/v1/customers").await.0,
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
    }
    assert_eq!(get(&app, &admin, "/api/v1/customers").await.0, StatusCode::OK);
    tokens::revoke(&app.db, "ops", wecom_scrm::db::now_ms()).await.unwrap();
    assert_eq!(get(&app, &admin, "/api/v1/customers").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_sees_every_customer_and_a_manager_only_their_departments() {
    let (app, admin, manager) = spawn().await;
    let (status, all) = get(&app, &admin, "/api/v1/customers").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(names(&all), ["刘洋", "张伟", "陈静"]);
    assert!(all["next_cursor"].is_null());
    let (_, team) = get(&app, &manager, "/api/v1/customers").await;
    assert_eq!(names(&team), ["刘洋", "张伟"], "陈静 belongs to 销售二部");

    // A customer outside the scope does not exist, as far as the manager can tell.
    let chen = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "陈静")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, problem) = get(&app, &manager, &format!("/api/v1/customers/{chen}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["detail"], "customer not found");
    assert_eq!(
        get(&app, &admin, &format!("/api/v1/customers/{chen}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &admin, "/api/v1/customers/999999").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &admin, "/api/v1/customers/abc").await.0,
        StatusCode::NOT_FOUND
    );

    let (_, members) = get(&app, &manager, "/api/v1/members").await;
    let userids: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userid"].as_str().unwrap())
        .collect();
    assert_eq!(userids, ["lead1", "rep1", "rep2"]);
    let (_, departments) = get(&app, &manager, "/api/v1/departments").await;
    assert_eq!(departments["items"].as_array().unwrap().len(), 1);
    assert_eq!(departments["items"][0]["name"], "销售一部");
    assert_eq!(departments["items"][0]["leaders"], json!(["lead1"]));
    let (_, departments) = get(&app, &admin, "/api/v1/departments").await;
    assert_eq!(departments["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_customer_comes_with_followers_follow_ups_and_reminders() {
    let (app, admin, _) = spawn().await;
    app.say("rep1", "记 @张伟 已报价，客户关心交付周期").await;
    app.say("rep1", "提醒 @张伟 2030-12-05 10:00 回电话").await;
    let (_, page) = get(&app, &admin, "/api/v1/customers?owner=rep1").await;
    let zhang = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "张伟")
        .cloned()
        .expect("张伟 is rep1's");
    assert_eq!(zhang["corp_name"], "华为");
    assert_eq!(zhang["channel"], "expo");
    assert!(zhang["created_at"].as_str().unwrap().ends_with("+08:00"), "{zhang}");

    let (status, detail) = get(&app, &admin, &format!("/api/v1/customers/{}", zhang["id"])).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["followers"][0]["userid"], "rep1");
    assert_eq!(detail["followers"][0]["remark"], "张总-华为采购 13800000001");
    assert_eq!(detail["follow_ups"][0]["content"], "已报价，客户关心交付周期");
    assert_eq!(detail["follow_ups"][0]["author"], "rep1");
    assert_eq!(detail["reminders"][0]["text"], "回电话");
    assert_eq!(detail["reminders"][0]["status"], "open");
}

#[tokio::test]
async fn filters_and_cursor_pages_walk_every_customer_once() {
    let (app, admin, _) = spawn().await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/customers?limit=1".to_owned();
    loop {
        let (status, page) = get(&app, &admin, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/customers?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["刘洋", "张伟", "陈静"]);

    let (_, page) = get(&app, &admin, "/api/v1/customers?department=3").await;
    assert_eq!(names(&page), ["陈静"]);
    let (_, page) = get(&app, &admin, "/api/v1/customers?department=1").await;
    assert_eq!(names(&page).len(), 3, "sub-departments are included");
    let (_, page) = get(&app, &admin, "/api/v1/customers?channel=website").await;
    assert_eq!(names(&page), ["陈静"]);
    app.say("rep1", "阶段 @张伟 方案报价").await;
    app.say("rep1", "标签 @张伟 重点客户").await;
    let (_, page) = get(
        &app,
        &admin,
        "/api/v1/customers?stage=%E6%96%B9%E6%A1%88%E6%8A%A5%E4%BB%B7",
    )
    .await;
    assert_eq!(names(&page), ["张伟"]);
    let (_, page) = get(&app, &admin, &format!("/api/v1/customers?tag={}", "重点客户")).await;
    assert_eq!(names(&page), ["张伟"]);
    app.say("rep1", "状态 @刘洋 hot").await;
    let (_, page) = get(&app, &admin, "/api/v1/customers?status=hot").await;
    assert_eq!(names(&page), ["刘洋"]);
    app.say("rep3", "评级 @陈静 A").await;
    let (_, page) = get(&app, &admin, "/api/v1/customers?rating=a").await;
    assert_eq!(names(&page), ["陈静"]);
    let (_, page) = get(&app, &admin, "/api/v1/customers?owner=rep3").await;
    assert_eq!(names(&page), ["陈静"]);
    let (_, page) = get(&app, &admin, "/api/v1/customers?at_risk=true").await;
    assert_eq!(names(&page), Vec::<String>::new(), "nobody is at risk yet");
    let (_, page) = get(
        &app,
        &admin,
        "/api/v1/customers?updated_since=2000-01-01T00:00:00%2B08:00",
    )
    .await;
    assert_eq!(names(&page).len(), 3);
    let (_, page) = get(
        &app,
        &admin,
        "/api/v1/customers?updated_since=2999-01-01T00:00:00%2B08:00",
    )
    .await;
    assert_eq!(names(&page), Vec::<String>::new());
}

#[tokio::test]
async fn at_risk_means_the_same_in_the_api_and_the_managers_summary() {
    let (app, admin, _) = spawn().await;
    let db_now = wecom_scrm::db::now_ms();
    // 张伟 sits in an open stage without a follow-up for longer than summary.at_risk_after_days;
    // 陈静 deleted her rep.
    app.say("rep1", "阶段 @张伟 方案报价").await;
    customer::Entity::update_many()
        .col_expr(customer::Column::CreatedAt, Expr::val(db_now - 30 * 86_400_000))
        .filter(customer::Column::Name.eq("张伟"))
        .exec(&app.db)
        .await
        .unwrap();
    let chen = customer_id(&app, "wmC3").await;
    wecom_scrm::crm::customers::mark_at_risk(&app.db, chen, "客户删除了员工", db_now)
        .await
        .unwrap();

    let (_, risky) = get(&app, &admin, "/api/v1/customers?at_risk=true").await;
    assert_eq!(names(&risky), ["张伟", "陈静"]);
    let zhang = risky["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "张伟")
        .unwrap();
    assert_eq!(zhang["at_risk"], true);
    assert!(
        zhang["at_risk_reason"]
            .as_str()
            .unwrap()
            .contains("天未跟进（方案报价）"),
        "{zhang}"
    );
    let (_, safe) = get(&app, &admin, "/api/v1/customers?at_risk=false").await;
    assert_eq!(names(&safe), ["刘洋"]);
    assert_eq!(safe["items"][0]["at_risk"], false);

    // The summary of the leader of both departments lists the same two.
    let s = app.services();
    let today = wecom_scrm::texts::local_date(db_now, s.tz());
    let rendered = wecom_scrm::report::render(&s, today, Some("boss"), db_now)
        .await
        .unwrap();
    let text = rendered[0].parts.join("\n");
    assert!(text.contains("张伟") && text.contains("陈静"), "{text}");
    assert!(!text.contains("刘洋(") && !text.contains("刘洋 "), "{text}");
}

#[tokio::test]
async fn a_manager_asking_outside_their_scope_is_refused_not_shown_an_empty_list() {
    let (app, admin, manager) = spawn().await;
    for path in [
        "/api/v1/customers?owner=rep3",
        "/api/v1/customers?department=3",
        "/api/v1/export/customers.csv?owner=rep3",
        "/api/v1/follow-ups?author=rep3",
        "/api/v1/reminders?owner=rep3",
        "/api/v1/audit?member=rep3",
    ] {
        let (status, problem) = get(&app, &manager, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("outside this token's scope"),
            "{problem}"
        );
        assert_eq!(get(&app, &admin, path).await.0, StatusCode::OK, "{path} for an admin");
    }
    // Within the scope: answered.
    let (status, page) = get(&app, &manager, "/api/v1/customers?owner=rep1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&page), ["刘洋", "张伟"]);
    assert_eq!(
        get(&app, &manager, "/api/v1/customers?department=2").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_parameters_are_422_naming_each_field() {
    let (app, admin, _) = spawn().await;
    let (status, problem) = get(
        &app,
        &admin,
        "/api/v1/customers?limit=0&colour=red&at_risk=maybe&updated_since=yesterday&cursor=xyz",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_fields(&problem);
    assert_eq!(
        fields,
        ["colour", "at_risk", "updated_since", "limit", "cursor"],
        "{problem}"
    );
    assert_eq!(get(&app, &admin, "/api/v1/nothing-here").await.0, StatusCode::NOT_FOUND);
    let (status, problem) = send(&app, reqwest::Method::PATCH, &admin, "/api/v1/customers", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(problem["type"], "/api/v1/problems/method-not-allowed");
}

#[tokio::test]
async fn channels_are_written_by_admins_only_and_every_write_is_audited() {
    let (app, admin, manager) = spawn().await;
    let body = json!({"state": "fair2026", "name": "广交会展位", "welcome": "您好{name}，我是{rep}。", "plan": "热"});
    let (status, problem) = send(&app, reqwest::Method::POST, &manager, "/api/v1/channels", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let (status, created) = send(&app, reqwest::Method::POST, &admin, "/api/v1/channels", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["plan"], "hot");
    let id = created["id"].as_i64().unwrap();
    let (status, _) = send(&app, reqwest::Method::POST, &admin, "/api/v1/channels", body).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, listed) = get(&app, &manager, "/api/v1/channels").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["state"] == "fair2026")
    );

    let path = format!("/api/v1/channels/{id}");
    let (status, replaced) = send(
        &app,
        reqwest::Method::PUT,
        &admin,
        &path,
        json!({"state": "fair2026", "name": "广交会 A 馆"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["name"], "广交会 A 馆");
    assert!(replaced["welcome"].is_null());

    let (status, problem) = send(
        &app,
        reqwest::Method::PUT,
        &admin,
        &path,
        json!({"state": "", "name": "x", "plan": "someday", "colour": "red"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"], "/colour",
        "unknown fields are refused: {problem}"
    );
    assert!(problem["detail"].as_str().unwrap().contains("colour"), "{problem}");
    let (status, problem) = send(
        &app,
        reqwest::Method::PUT,
        &admin,
        &path,
        json!({"state": "", "name": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "/name", "{problem}");
    let (status, problem) = send(
        &app,
        reqwest::Method::PUT,
        &admin,
        &path,
        json!({"state": "", "name": "x", "plan": "someday"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields = error_fields(&problem);
    assert_eq!(fields, ["/state", "/plan"]);
    let response = app
        .client
        .put(app.url(&path))
        .bearer_auth(&admin)
        .body("state=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = app
        .client
        .post(app.url("/api/v1/channels"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let response = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(get(&app, &admin, &path).await.0, StatusCode::NOT_FOUND);

    let actions: Vec<(String, String)> = audit::Entity::find()
        .filter(audit::Column::Action.starts_with("channel."))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.actor, a.action))
        .collect();
    let by = |action: &str| ("token:ops".to_owned(), action.to_owned());
    assert_eq!(
        actions,
        [by("channel.create"), by("channel.update"), by("channel.delete")]
    );
}

#[tokio::test]
async fn follow_ups_reminders_and_the_audit_log_are_read_within_scope() {
    let (app, admin, manager) = spawn().await;
    app.say("rep1", "记 @张伟 已报价").await;
    app.say("rep1", "记 @张伟 约了下周见面").await;
    app.say("rep3", "记 @陈静 发了资料").await;
    app.say("rep1", "提醒 @张伟 2030-12-05 10:00 回电话").await;
    app.say("rep3", "提醒 @陈静 2030-12-06 10:00 寄样品").await;
    app.say("rep1", "阶段 @张伟 方案报价").await;

    let (status, all) = get(&app, &admin, "/api/v1/follow-ups").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let contents = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["content"].as_str().or(f["text"].as_str()).unwrap().to_owned())
            .collect()
    };
    assert_eq!(contents(&all), ["发了资料", "约了下周见面", "已报价"], "newest first");
    let (_, team) = get(&app, &manager, "/api/v1/follow-ups").await;
    assert_eq!(contents(&team), ["约了下周见面", "已报价"]);
    let (_, first) = get(&app, &manager, "/api/v1/follow-ups?limit=1").await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = get(&app, &manager, &format!("/api/v1/follow-ups?limit=1&cursor={cursor}")).await;
    assert_eq!(contents(&second), ["已报价"]);
    let (_, by_author) = get(&app, &admin, "/api/v1/follow-ups?author=rep3").await;
    assert_eq!(contents(&by_author), ["发了资料"]);

    let (_, reminders) = get(&app, &manager, "/api/v1/reminders?status=open").await;
    assert_eq!(contents(&reminders), ["回电话"]);
    let (_, reminders) = get(&app, &admin, "/api/v1/reminders?since=2030-12-06T00:00:00%2B08:00").await;
    assert_eq!(contents(&reminders), ["寄样品"]);
    let (status, problem) = get(&app, &admin, "/api/v1/reminders?status=later").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), ["status"]);

    // The stage set in chat made the customer's first deal.
    let (status, audit) = get(&app, &manager, "/api/v1/audit?action=deal.created").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit["items"][0]["actor"], "rep1");
    assert_eq!(audit["items"][0]["detail"]["stage"], "方案报价", "{audit}");
    let (status, _) = get(&app, &manager, "/api/v1/audit?member=rep3").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "rep3 is not lead1's");

    let (_, stages) = get(&app, &manager, "/api/v1/stages").await;
    let items = stages["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "初步接触");
    assert_eq!(items[0]["position"], 1);
    assert_eq!(items[items.len() - 2]["kind"], "won");
    assert_eq!(items[items.len() - 1]["kind"], "lost");
}

#[tokio::test]
async fn an_admin_replaces_the_stages_and_the_chat_uses_them_at_once() {
    let (app, admin, manager) = spawn().await;
    app.say("rep1", "阶段 @张伟 方案报价").await;
    let stages = json!({"stages": ["初次沟通", "报价", "成交", "丢单"]});
    let (status, _) = send(&app, reqwest::Method::PUT, &manager, "/api/v1/stages", stages.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, replaced) = send(&app, reqwest::Method::PUT, &admin, "/api/v1/stages", stages).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        replaced["customers_in_unlisted_stages"], 1,
        "张伟 keeps 方案报价: {replaced}"
    );
    assert_eq!(replaced["items"][2]["kind"], "won");
    let (_, listed) = get(&app, &manager, "/api/v1/stages").await;
    assert_eq!(listed["items"][1]["name"], "报价");

    let answer = app.say("rep1", "阶段 @张伟 2").await;
    assert!(answer.contains("报价"), "{answer}");
    let answer = app.say("rep1", "阶段 @张伟 成交").await;
    assert!(answer.contains("🎉"), "the new won stage: {answer}");

    let (status, problem) = send(
        &app,
        reqwest::Method::PUT,
        &admin,
        "/api/v1/stages",
        json!({"stages": ["报价", "报价", "成交"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), ["/stages"]);
    let audited = audit::Entity::find()
        .filter(audit::Column::Action.eq("stages.update"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("audited");
    assert_eq!(audited.actor, "token:ops");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let (app, admin, _) = spawn().await;
    // The document is public: clients generate code from it before they hold a token.
    let response = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/customers",
        "/customers/{id}",
        "/members",
        "/departments",
        "/channels",
        "/channels/{id}",
        "/export/customers.csv",
        "/import/customers",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys());
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // What a validator insists on (CI also runs openapi-spec-validator on `wecom-scrm openapi`):
    // unique operation ids, and a description on every response.
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(
                operation_ids.insert(id.clone()),
                "{method} {path}: operation id {id:?} repeated"
            );
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
    // Every schema a route refers to is defined.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{name} is referenced but not defined"
        );
    }
    assert_eq!(get(&app, &admin, "/api/v1/customers").await.0, StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_from_the_command_line() {
    let (app, _, _) = spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let mut create = command(&app.test_db, &dir);
    create.args([
        "token",
        "create",
        "--name",
        "crm-export",
        "--role",
        "manager",
        "--member",
        "lead2",
    ]);
    let (code, stdout, stderr) = output_async(create).await;
    assert_eq!(code, 0, "{stderr}");
    let token = stdout.trim().to_owned();
    assert!(token.starts_with("scrm_"), "{stdout}");
    assert!(stderr.contains("manager for lead2"), "{stderr}");
    let (status, page) = get(&app, &token, "/api/v1/customers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&page), ["陈静"]);

    let mut bad = command(&app.test_db, &dir);
    bad.args(["token", "create", "--name", "x", "--role", "manager"]);
    let (code, _, stderr) = output_async(bad).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("--member"), "{stderr}");
    let mut taken = command(&app.test_db, &dir);
    taken.args(["token", "create", "--name", "crm-export", "--role", "admin"]);
    let (code, _, stderr) = output_async(taken).await;
    assert_eq!(code, 2, "{stderr}");

    let mut list = command(&app.test_db, &dir);
    list.args(["token", "list"]);
    let (code, stdout, _) = output_async(list).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("crm-export\tmanager (lead2)"), "{stdout}");
    assert!(stdout.contains("last used"), "{stdout}");
    assert!(!stdout.contains(&token[10..]), "the secret is never shown again");

    let mut revoke = command(&app.test_db, &dir);
    revoke.args(["token", "revoke", "crm-export"]);
    let (code, stdout, stderr) = output_async(revoke).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("revoked"), "{stdout}");
    assert_eq!(get(&app, &token, "/api/v1/customers").await.0, StatusCode::UNAUTHORIZED);
    let mut again = command(&app.test_db, &dir);
    again.args(["token", "revoke", "--name", "crm-export"]);
    assert_eq!(output_async(again).await.0, 2);
}

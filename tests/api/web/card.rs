//! The customer's page and its JSON: who may see and change a customer, the writes a rep makes
//! from the page (through the chat's domain functions: audit, undo), the JS-SDK signatures.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wecom_scrm::cache::Cache;
use wecom_scrm::wecom::api::WecomClient;

use super::{Browser, signed_in, spawn_web};
use crate::helpers::{TestDb, customer_id, test_config};

#[tokio::test]
async fn a_rep_sees_their_customer_a_leader_their_team_and_anyone_else_nothing() {
    let app = spawn_web(|_| {}).await;
    let rep = signed_in(&app, "rep1").await;
    let card: Value = rep.get(&app.url("/web/api/customers/wmC1")).await.json().await.unwrap();
    assert_eq!(card["name"], "张伟");
    assert_eq!(card["corp_name"], "华为");
    assert_eq!(card["owner"]["userid"], "rep1");
    assert_eq!(card["followers"][0]["name"], "张三");
    assert_eq!(card["followers"][0]["remark"], "张总-华为采购 13800000001");
    assert_eq!(card["can_edit"], true);
    assert!(card["stages"].as_array().unwrap().len() >= 2);

    // Their team's leader sees the customer but may not change them.
    let leader = signed_in(&app, "lead1").await;
    let seen: Value = leader
        .get(&app.url("/web/api/customers/wmC1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["can_edit"], false);
    let write = leader
        .send(
            Method::POST,
            &app.url("/web/api/customers/wmC1/notes"),
            json!({"text": "经理的话"}),
        )
        .await;
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    let page = leader.get(&app.url("/web/customers/wmC1")).await.text().await.unwrap();
    assert!(page.contains("id=\"view-only\"") && !page.contains("id=\"note-form\""));

    // Another department's rep and leader: not found, exactly like a customer that does not exist.
    for outsider in ["rep3", "lead2"] {
        let browser = signed_in(&app, outsider).await;
        let api = browser.get(&app.url("/web/api/customers/wmC1")).await;
        assert_eq!(api.status(), StatusCode::NOT_FOUND, "{outsider}");
        let page = browser.get(&app.url("/web/customers/wmC1")).await;
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "{outsider}");
        let write = browser
            .send(
                Method::PATCH,
                &app.url("/web/api/customers/wmC1"),
                json!({"rating": "A"}),
            )
            .await;
        assert_eq!(write.status(), StatusCode::NOT_FOUND, "{outsider}");
    }
    let unknown = rep.get(&app.url("/web/customers/wmNoSuchCustomer")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("找不到这位客户"));
    // The boss leads the whole company.
    let boss = signed_in(&app, "boss").await;
    assert_eq!(
        boss.get(&app.url("/web/api/customers/wmC3")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn notes_reminders_and_fields_written_from_the_page_are_the_chat_s() {
    let app = spawn_web(|_| {}).await;
    let rep = signed_in(&app, "rep1").await;
    let base = app.url("/web/api/customers/wmC1");

    let note = rep
        .send(
            Method::POST,
            &format!("{base}/notes"),
            json!({"text": "侧边栏里记的：已报价"}),
        )
        .await;
    assert_eq!(note.status(), StatusCode::CREATED);
    let note: Value = note.json().await.unwrap();
    assert_eq!(note["message"], "✅ 已记录跟进 · 张伟(华为)");

    // Natural language as in chat, the text after the time, or an RFC 3339 instant.
    let reminder = rep
        .send(
            Method::POST,
            &format!("{base}/reminders"),
            json!({"at": "明天下午3点 发报价单"}),
        )
        .await;
    assert_eq!(reminder.status(), StatusCode::CREATED);
    let reminder: Value = reminder.json().await.unwrap();
    assert_eq!(reminder["text"], "发报价单");
    assert!(
        reminder["due_at"].as_str().unwrap().ends_with("T15:00:00+08:00"),
        "{reminder}"
    );
    let at = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let exact = rep
        .send(
            Method::POST,
            &format!("{base}/reminders"),
            json!({"at": at, "text": "回访"}),
        )
        .await;
    assert_eq!(exact.status(), StatusCode::CREATED);
    // Never stored wrong: a time with more after it, a past time, no time at all.
    for (body, field) in [
        (json!({"at": "明天下午3点 发资料", "text": "回电话"}), "/at"),
        (json!({"at": "2020-01-01T09:00:00+08:00"}), "/at"),
        (json!({"at": "回头再说"}), "/at"),
        (json!({"at": "明天", "text": "x", "when": "now"}), "/when"),
    ] {
        let answer = rep.send(Method::POST, &format!("{base}/reminders"), body.clone()).await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }

    let patched = rep
        .send(
            Method::PATCH,
            &base,
            json!({"stage": "需求确认", "status": "hot", "rating": "a", "tags": ["VIP", "华东"]}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["stage"], "需求确认");
    assert_eq!(patched["status"], "hot");
    assert_eq!(patched["rating"], "A");
    assert_eq!(patched["tags"], json!(["VIP", "华东"]));
    assert_eq!(patched["follow_ups"][0]["content"], "侧边栏里记的：已报价");
    let texts: Vec<&str> = patched["reminders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"发报价单") && texts.contains(&"回访"), "{texts:?}");
    let bad = rep
        .send(
            Method::PATCH,
            &base,
            json!({"stage": "不存在", "rating": "Z", "tags": [""]}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = bad.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["/stage", "/rating", "/tags"]);

    // The same facts through chat, and the chat's undo takes back the page's last change.
    let info = app.say("rep1", "详情 张伟").await;
    assert!(
        info.contains("侧边栏里记的：已报价") && info.contains("发报价单") && info.contains("需求确认"),
        "{info}"
    );
    let undone = app.say("rep1", "撤销").await;
    assert!(undone.contains("标签"), "{undone}");
    let card: Value = rep.get(&base).await.json().await.unwrap();
    assert_eq!(card["tags"], json!([]));

    // Every change is in the audit log, by the rep.
    let id = customer_id(&app, "wmC1").await;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let actions: Vec<String> = wecom_scrm::db::entity::audit::Entity::find()
        .filter(wecom_scrm::db::entity::audit::Column::CustomerId.eq(id))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "rep1")
        .map(|e| e.action)
        .collect();
    for action in [
        "followup.created",
        "reminder.created",
        "deal.created",
        "customer.status",
        "customer.rating",
        "customer.tags",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn writes_need_the_csrf_token_known_fields_and_a_small_body() {
    let app = spawn_web(|_| {}).await;
    let rep = signed_in(&app, "rep1").await;
    let url = app.url("/web/api/customers/wmC1/notes");
    let without = rep.request(Method::POST, &url, Some(json!({"text": "x"})), false).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let wrong = Browser::new();
    wrong.set_cookie("scrm_session", &rep.cookie("scrm_session").unwrap());
    wrong.set_cookie("scrm_csrf", "not-the-token");
    assert_eq!(
        wrong.send(Method::POST, &url, json!({"text": "x"})).await.status(),
        StatusCode::FORBIDDEN
    );
    let unknown = rep
        .send(Method::POST, &url, json!({"text": "x", "author": "boss"}))
        .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = unknown.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "/author");
    let huge = rep.send(Method::POST, &url, json!({"text": "长".repeat(20_000)})).await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without a session at all: 401 (and nothing was written).
    let anonymous = Browser::new();
    assert_eq!(
        anonymous.send(Method::POST, &url, json!({"text": "x"})).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let card: Value = rep.get(&app.url("/web/api/customers/wmC1")).await.json().await.unwrap();
    assert_eq!(card["follow_ups"], json!([]));
}

/// Asks the fake whether a signature is the one WeCom expects (as its JS-SDK stand-in does).
async fn wecom_accepts(app: &crate::helpers::TestApp, kind: &str, url: &str, config: &Value, signature: &str) -> bool {
    let body = json!({
        "kind": kind, "url": url, "timestamp": config["timestamp"],
        "nonceStr": config["nonceStr"], "signature": signature,
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/_fake/jssdk/check", app.fake().url()))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["ok"] == true
}

#[tokio::test]
async fn jssdk_signatures_use_the_corp_ticket_and_the_app_ticket_fetched_once() {
    let app = spawn_web(|_| {}).await;
    let rep = signed_in(&app, "rep1").await;
    let page = app.url("/web/sidebar?entry=x");
    let ask = |url: String| {
        let rep = &rep;
        let app = &app;
        async move {
            let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
            rep.get(&app.url(&format!("/web/api/jssdk?url={encoded}"))).await
        }
    };
    // Many pages at once: one fetch of each ticket.
    let answers = futures::future::join_all((0..20).map(|_| ask(format!("{page}#/customer")))).await;
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::OK);
    }
    assert_eq!(app.fake().calls("get_jsapi_ticket"), 1);
    assert_eq!(app.fake().calls("ticket/get"), 1);

    let config: Value = ask(page.clone()).await.json().await.unwrap();
    assert_eq!(config["corpId"], app.config.wecom.corp_id);
    assert_eq!(config["agentId"], app.config.wecom.agent_id);
    let corp = config["signature"].as_str().unwrap();
    let agent = config["agentSignature"].as_str().unwrap();
    assert_ne!(corp, agent, "the agent signature is made with the app's own ticket");
    assert!(wecom_accepts(&app, "config", &page, &config, corp).await);
    assert!(wecom_accepts(&app, "agentConfig", &page, &config, agent).await);
    assert!(!wecom_accepts(&app, "agentConfig", &page, &config, corp).await);

    // Only pages under the public URL are signed.
    for url in ["https://evil.example/web/sidebar", "", "http://127.0.0.1:1/web/sidebar"] {
        assert_eq!(
            ask(url.into()).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}"
        );
    }
    let anonymous = Browser::new();
    let answer = anonymous.get(&app.url("/web/api/jssdk?url=x")).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_instances_fetch_each_ticket_once_through_the_cache() {
    let fake = wecom_scrm::wecom::fake::FakeWecom::start_local(crate::helpers::test_fixture())
        .await
        .unwrap();
    let db = TestDb::new();
    let mut config = test_config(&db);
    config.wecom.api_base = fake.url();
    let cache = Cache::connect(&config.redis).await.unwrap();
    // On Redis, the second instance has its own connection to the same keys.
    let second_cache = if cache.is_shared() {
        let mut other = config.redis.clone();
        other.key_prefix = String::new();
        Cache::connect(&other).await.unwrap().scoped(cache.prefix())
    } else {
        cache.clone()
    };
    let first = WecomClient::new(&config.wecom, cache);
    let second = WecomClient::new(&config.wecom, second_cache);
    let calls = (0..10).flat_map(|i| {
        let client = if i % 2 == 0 { first.clone() } else { second.clone() };
        let again = client.clone();
        [
            tokio::spawn(async move { client.corp_ticket().await.unwrap() }),
            tokio::spawn(async move { again.agent_ticket().await.unwrap() }),
        ]
    });
    let tickets: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(fake.calls("get_jsapi_ticket"), 1);
    assert_eq!(fake.calls("ticket/get"), 1);
    assert_eq!(tickets.iter().collect::<std::collections::BTreeSet<_>>().len(), 2);
}

#[tokio::test]
async fn pushed_reminders_and_new_customer_notices_link_to_the_customer_s_page() {
    let app = spawn_web(|c| {
        c.inbox.process = false;
        c.jobs.push_reminders = false;
        c.outbox.send = false;
    })
    .await;
    let c1 = customer_id(&app, "wmC1").await;
    let now = wecom_scrm::db::now_ms();
    crate::helpers::remind(&app, "rep1", Some(c1), "回电话", now - 1000).await;
    app.drive_deliveries().await;
    let page = app.url("/web/customers/wmC1");
    let pushed = app.fake().messages_to("rep1");
    let wecom_scrm::wecom::api::MessageBody::TemplateCard { template_card } = &pushed[0].body else {
        panic!("a card: {pushed:?}")
    };
    assert_eq!(template_card.horizontal_content_list[0].url, page, "{template_card:?}");
    assert_eq!(
        template_card.card_action.as_ref().map(|a| a.url.as_str()),
        Some(page.as_str())
    );

    app.fake()
        .upsert_contact(crate::helpers::contact("wmNew01", "孙丽", "京东", &[("rep1", "", "")]));
    app.post_callback(&crate::helpers::add_event("rep1", "wmNew01", None, None))
        .await;
    app.settle().await;
    let texts = crate::helpers::texts_to(&app, "rep1");
    let notice = texts
        .iter()
        .find(|t| t.starts_with("🆕 新客户：孙丽"))
        .expect("the new-customer notice");
    let link = app.url("/web/customers/wmNew01");
    assert!(
        notice.contains(&format!("<a href=\"{link}\">打开客户资料</a>")),
        "{notice}"
    );

    // The links open the pages for the rep.
    let rep = signed_in(&app, "rep1").await;
    for url in [page, link] {
        assert_eq!(rep.get(&url).await.status(), StatusCode::OK, "{url}");
    }
}

#[tokio::test]
async fn the_page_shows_the_score_its_segment_and_whether_the_lead_is_in_the_pool() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use wecom_scrm::db::entity::customer;
    let app = spawn_web(|_| {}).await;
    let id = customer_id(&app, "wmC1").await;
    customer::Entity::update_many()
        .col_expr(customer::Column::Score, Expr::val(58))
        .col_expr(customer::Column::Segment, Expr::val("main"))
        .filter(customer::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
    let rep = signed_in(&app, "rep1").await;
    let card: Value = rep.get(&app.url("/web/api/customers/wmC1")).await.json().await.unwrap();
    assert_eq!(
        (
            &card["score"],
            &card["segment"],
            &card["segment_label"],
            &card["in_pool"]
        ),
        (&json!(58), &json!("main"), &json!("主要"), &json!(false))
    );
    let page = rep.get(&app.url("/web/customers/wmC1")).await.text().await.unwrap();
    assert!(page.contains("id=\"score-value\">58（主要）"), "{page}");
    assert!(!page.contains("id=\"in-pool\""));

    // In the pool, the rep who still has them as a contact sees so.
    let lead = customer::Entity::find_by_id(id).one(&app.db).await.unwrap().unwrap();
    let pooled = wecom_scrm::crm::pool::to_pool(
        &app.db,
        &wecom_scrm::crm::audit::Actor::System,
        &lead,
        Some("rep1"),
        wecom_scrm::db::entity::lead_assignment::LeadAction::Pooled,
        "test",
        wecom_scrm::db::now_ms(),
    )
    .await
    .unwrap();
    assert!(pooled);
    let page = rep.get(&app.url("/web/customers/wmC1")).await.text().await.unwrap();
    assert!(page.contains("id=\"in-pool\""), "{page}");
}

//! The WeCom API client against the in-repo fake WeCom, on whichever cache backend the environment
//! selects: tokens, retries, limits, pagination, and every call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use secrecy::SecretString;
use wecom_scrm::cache::Cache;
use wecom_scrm::config::WecomConfig;
use wecom_scrm::wecom::api::*;
use wecom_scrm::wecom::fake::{FakeWecom, FaultKind, Fixture};

use wecom_scrm::clock::Clock;

use crate::helpers::*;

fn wecom_config(fake: &FakeWecom) -> WecomConfig {
    let fixture = fake.fixture();
    WecomConfig {
        corp_id: fixture.corp_id.clone(),
        agent_id: fixture.agent_id,
        secret: SecretString::from(fixture.secret.clone()),
        token: SecretString::from(fixture.token.clone()),
        encoding_aes_key: SecretString::from(fixture.encoding_aes_key.clone()),
        api_base: fake.url(),
        retry_base_ms: 10,
        retry_budget_ms: 3_000,
        ..WecomConfig::default()
    }
}

async fn setup(tweak: impl FnOnce(&mut WecomConfig)) -> (FakeWecom, WecomClient, Cache) {
    init_test_process();
    let fake = FakeWecom::start_local(Fixture::demo()).await.unwrap();
    let mut config = wecom_config(&fake);
    tweak(&mut config);
    let cache = test_cache().await;
    let client = WecomClient::new(&config, cache.clone());
    (fake, client, cache)
}

#[tokio::test]
async fn many_concurrent_calls_fetch_one_token() {
    let (fake, client, _) = setup(|_| {}).await;
    let calls = (0..30).map(|_| client.get_user("zhangsan"));
    for result in join_all(calls).await {
        assert_eq!(result.unwrap().name, "张三");
    }
    assert_eq!(fake.calls("gettoken"), 1);
    assert_eq!(fake.calls("user/get"), 30);
}

#[tokio::test]
async fn two_client_instances_share_the_token_through_the_cache() {
    let (fake, first, cache) = setup(|_| {}).await;
    // On Redis, a second, separately connected cache under the same prefix: what another instance has.
    let second_cache = if cache.is_shared() {
        let db = TestDb::new();
        let mut config = test_config(&db);
        config.redis.key_prefix = String::new();
        Cache::connect(&config.redis).await.unwrap().scoped(cache.prefix())
    } else {
        cache.clone()
    };
    let second = WecomClient::new(&wecom_config(&fake), second_cache);
    let (a, b) = tokio::join!(first.get_user("lisi"), second.get_user("lisi"));
    a.unwrap();
    b.unwrap();
    first.get_user("zhangsan").await.unwrap();
    second.get_user("zhangsan").await.unwrap();
    assert_eq!(fake.calls("gettoken"), 1);
}

#[tokio::test]
async fn an_expired_token_is_replaced_and_the_call_retried_once() {
    let (fake, client, _) = setup(|_| {}).await;
    client.get_user("zhangsan").await.unwrap();
    fake.expire_tokens();
    client.get_user("zhangsan").await.unwrap();
    assert_eq!(fake.calls("gettoken"), 2);
    assert_eq!(fake.calls("user/get"), 3, "one call, one refused with 42001, one retry");

    // 40014 (invalid token) is handled the same way, and only once per call.
    fake.inject(Some("user/get"), FaultKind::Errcode(codes::INVALID_ACCESS_TOKEN), 5);
    let err = client.get_user("zhangsan").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_ACCESS_TOKEN));
    assert_eq!(fake.calls("gettoken"), 3);
}

#[tokio::test]
async fn wrong_credentials_are_a_configuration_error_and_never_retried() {
    let (fake, _, cache) = setup(|_| {}).await;
    let mut config = wecom_config(&fake);
    config.secret = SecretString::from("wrong-secret");
    let client = WecomClient::new(&config, cache.scoped("wrong-secret:"));
    let err = client.get_user("zhangsan").await.unwrap_err();
    assert!(
        matches!(
            err,
            WecomError::Config {
                code: codes::INVALID_CREDENTIAL,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("SCRM_WECOM__SECRET"), "{err}");
    assert!(
        !err.to_string().contains("wrong-secret"),
        "the secret is never shown: {err}"
    );
    assert_eq!(fake.calls("gettoken"), 1);
    assert_eq!(fake.calls("user/get"), 0);

    config.corp_id = "wwSomeOtherCorp".into();
    let client = WecomClient::new(&config, cache.scoped("wrong-corp:"));
    let err = client.get_user("zhangsan").await.unwrap_err();
    assert!(
        matches!(
            err,
            WecomError::Config {
                code: codes::INVALID_CORPID,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_and_others_fail_at_once() {
    let (fake, client, _) = setup(|c| c.max_attempts = 4).await;
    fake.inject(Some("user/get"), FaultKind::Errcode(codes::API_FREQ_LIMIT), 2);
    client.get_user("zhangsan").await.unwrap();
    assert_eq!(fake.calls("user/get"), 3);

    fake.inject(Some("user/get"), FaultKind::Http(502), 1);
    client.get_user("zhangsan").await.unwrap();
    assert_eq!(fake.calls("user/get"), 5);

    fake.inject(Some("user/get"), FaultKind::Errcode(codes::SYSTEM_BUSY), 4);
    let err = client.get_user("zhangsan").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::SYSTEM_BUSY));
    assert!(err.is_transient());
    assert_eq!(fake.calls("user/get"), 9, "bounded: four attempts");

    let before = fake.calls("user/get");
    let err = client.get_user("nobody").await.unwrap_err();
    assert!(
        matches!(
            err,
            WecomError::Api {
                call: "user/get",
                code: codes::USER_NOT_FOUND,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fake.calls("user/get"), before + 1);
}

#[tokio::test]
async fn slow_answers_time_out_within_the_retry_budget() {
    let (fake, client, _) = setup(|c| {
        c.request_timeout_ms = 100;
        c.max_attempts = 3;
        c.retry_budget_ms = 2_000;
    })
    .await;
    client.get_user("zhangsan").await.unwrap();
    fake.set_delay(Duration::from_millis(400));
    let started = Instant::now();
    let err = client.get_user("zhangsan").await.unwrap_err();
    assert!(matches!(err, WecomError::Transport { timeout: true, .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "bounded in total time");
    fake.set_delay(Duration::ZERO);
    assert!(fake.calls("user/get") >= 3);
}

#[tokio::test]
async fn the_concurrency_cap_holds() {
    let (fake, client, _) = setup(|c| c.max_concurrency = 2).await;
    client.get_user("zhangsan").await.unwrap();
    fake.set_delay(Duration::from_millis(50));
    let calls = (0..8).map(|_| client.get_user("lisi"));
    assert!(join_all(calls).await.iter().all(Result::is_ok));
    assert_eq!(fake.max_concurrent_calls(), 2);
}

#[tokio::test]
async fn the_per_api_budget_limits_calls_per_minute() {
    init_test_process();
    let fake = FakeWecom::start_local(Fixture::demo()).await.unwrap();
    let mut config = wecom_config(&fake);
    config.api_calls_per_minute = 3;
    config.retry_budget_ms = 500;
    // Ten seconds into a minute, held there: the fixed window cannot reset mid-test.
    let now = chrono::Utc::now().timestamp_millis();
    let clock = Clock::manual(now - now.rem_euclid(60_000) + 10_000);
    let client = WecomClient::with_clock(&config, test_cache().await, clock.clone());
    for _ in 0..3 {
        client.get_user("zhangsan").await.unwrap();
    }
    let err = client.get_user("zhangsan").await.unwrap_err();
    assert!(
        matches!(err, WecomError::RateLimited { call: "user/get", .. }),
        "{err:?}"
    );
    assert_eq!(fake.calls("user/get"), 3);
    // Other APIs have budgets of their own.
    client.list_departments(None).await.unwrap();
    // The next minute brings a new budget.
    clock.advance(Duration::from_secs(60));
    client.get_user("zhangsan").await.unwrap();
    assert_eq!(fake.calls("user/get"), 4);
}

#[tokio::test]
async fn messages_of_every_type_are_delivered_and_recorded() {
    let (fake, client, _) = setup(|_| {}).await;
    let text = client
        .send_to_user("zhangsan", MessageBody::text("⏰ 提醒：15:00 回电话 · 张伟"), None)
        .await
        .unwrap();
    assert!(!text.is_empty());
    client
        .send_to_user("lijing", MessageBody::markdown("**今日汇总**\n> 新增客户：3"), None)
        .await
        .unwrap();
    let card = MessageBody::textcard(
        "客户跟进提醒",
        "<div class=\"normal\">张伟 已 3 天未跟进</div>",
        "https://crm.example.com/c/1",
    );
    client
        .send_to_user("zhangsan", card.clone(), Some(Duration::from_secs(600)))
        .await
        .unwrap();
    let sent = fake.messages();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].msgid, text);
    assert_eq!(sent[0].body.display_text(), "⏰ 提醒：15:00 回电话 · 张伟");
    assert_eq!(sent[2].body, card);
    assert!(sent[2].duplicate_check);
    assert_eq!(fake.messages_to("zhangsan").len(), 2);
}

#[tokio::test]
async fn duplicate_check_makes_wecom_deliver_a_repeated_request_once() {
    let (fake, client, _) = setup(|_| {}).await;
    let body = MessageBody::text("提醒 #42：回电话");
    for _ in 0..2 {
        client
            .send_to_user("zhangsan", body.clone(), Some(Duration::from_secs(3600)))
            .await
            .unwrap();
    }
    assert_eq!(fake.messages_to("zhangsan").len(), 1);
    assert_eq!(fake.suppressed_duplicates(), 1);
}

#[tokio::test]
async fn invalid_recipients_are_surfaced() {
    let (fake, client, _) = setup(|_| {}).await;
    fake.set_member_status("lisi", 5);
    let outcome = client
        .send_message(&OutgoingMessage {
            to_users: vec!["zhangsan".into(), "lisi".into()],
            body: MessageBody::text("hi"),
            duplicate_check: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome.invalid_users, vec!["lisi".to_owned()]);
    let err = client
        .send_to_user("lisi", MessageBody::text("hi"), None)
        .await
        .unwrap_err();
    assert_eq!(err, WecomError::InvalidRecipient { user: "lisi".into() });
    let err = client
        .send_to_user("ghost", MessageBody::text("hi"), None)
        .await
        .unwrap_err();
    assert_eq!(err, WecomError::InvalidRecipient { user: "ghost".into() });
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn external_contact_pagination_is_followed() {
    let (fake, client, _) = setup(|_| {}).await;
    let mut detail = ExternalContactDetail::default();
    detail.external_contact.external_userid = "wmPopular".into();
    detail.external_contact.name = "大客户".into();
    detail.follow_user = (0..1200)
        .map(|i| FollowUser {
            userid: format!("rep{i}"),
            createtime: 1_790_000_000 + i,
            ..FollowUser::default()
        })
        .collect();
    fake.upsert_contact(detail);
    let got = client.get_external_contact("wmPopular").await.unwrap();
    assert_eq!(got.external_contact.name, "大客户");
    assert_eq!(got.follow_user.len(), 1200);
    assert_eq!(got.follow_user[1199].userid, "rep1199");
    assert_eq!(fake.calls("externalcontact/get"), 3);

    let err = client.get_external_contact("wmNobody").await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_EXTERNAL_USERID));
}

#[tokio::test]
async fn batch_get_by_user_walks_every_page() {
    let (fake, client, _) = setup(|_| {}).await;
    for i in 0..250 {
        let mut detail = ExternalContactDetail::default();
        detail.external_contact.external_userid = format!("wmBulk{i:04}");
        detail.external_contact.name = format!("客户{i}");
        detail.follow_user = vec![FollowUser {
            userid: "lisi".into(),
            state: "expo".into(),
            ..FollowUser::default()
        }];
        fake.upsert_contact(detail);
    }
    let all = client
        .batch_get_all_by_user(&["lisi".to_owned(), "zhangsan".to_owned()])
        .await
        .unwrap();
    // lisi: 250 bulk + 2 from the demo fixture; zhangsan: 3.
    assert_eq!(all.len(), 255);
    assert!(all.iter().filter(|c| c.follow_info.userid == "lisi").count() == 252);
    assert_eq!(fake.calls("externalcontact/batch/get_by_user"), 3);

    let err = client.batch_get_by_user(&[], "", 10).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMETER));
}

#[tokio::test]
async fn listing_calls() {
    let (_fake, client, _) = setup(|_| {}).await;
    let follow = client.get_follow_user_list().await.unwrap();
    assert!(follow.contains(&"zhangsan".to_owned()) && !follow.contains(&"wangzong".to_owned()));
    assert_eq!(client.list_external_contacts("zhangsan").await.unwrap().len(), 3);
    assert!(
        client.list_external_contacts("lijing").await.unwrap().is_empty(),
        "84061 means none"
    );
    let departments = client.list_departments(None).await.unwrap();
    assert_eq!(departments.len(), 3);
    assert_eq!(departments[1].department_leader, vec!["lijing".to_owned()]);
    assert_eq!(client.list_departments(Some(2)).await.unwrap().len(), 1);
    let everyone = client.list_users(1, true).await.unwrap();
    assert_eq!(everyone.len(), 6);
    let east = client.list_users(2, false).await.unwrap();
    assert_eq!(
        east.iter().map(|m| m.userid.as_str()).collect::<Vec<_>>(),
        vec!["lijing", "zhangsan", "lisi"]
    );
    let lijing = client.get_user("lijing").await.unwrap();
    assert_eq!(lijing.is_leader_in_dept, vec![1]);
}

#[tokio::test]
async fn welcome_messages_are_sent_once() {
    let (fake, client, _) = setup(|_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let message = WelcomeMessage {
        text: "您好张伟，我是张三，很高兴为您服务".into(),
    };
    assert_eq!(
        client.send_welcome_msg("CODE1", &message, deadline).await.unwrap(),
        WelcomeOutcome::Sent
    );
    assert_eq!(
        client.send_welcome_msg("CODE1", &message, deadline).await.unwrap(),
        WelcomeOutcome::AlreadySent
    );
    assert_eq!(
        fake.calls("externalcontact/send_welcome_msg"),
        2,
        "41051 is not retried"
    );

    fake.inject(
        Some("externalcontact/send_welcome_msg"),
        FaultKind::Errcode(codes::WELCOME_BEING_SENT),
        2,
    );
    assert_eq!(
        client.send_welcome_msg("CODE2", &message, deadline).await.unwrap(),
        WelcomeOutcome::Sent
    );
    assert_eq!(fake.welcomes().len(), 2);

    fake.inject(
        Some("externalcontact/send_welcome_msg"),
        FaultKind::Errcode(codes::WELCOME_BEING_SENT),
        50,
    );
    let soon = Instant::now() + Duration::from_millis(200);
    let err = client.send_welcome_msg("CODE3", &message, soon).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(codes::WELCOME_BEING_SENT),
        "given up at the code's validity"
    );
}

#[tokio::test]
async fn remarks_and_resigned_transfers() {
    let (fake, client, _) = setup(|_| {}).await;
    let update = RemarkUpdate {
        remark: Some("张总-华为".into()),
        description: Some("关注交付周期".into()),
        ..Default::default()
    };
    client.remark("zhangsan", "wmDemoCustomer0001", &update).await.unwrap();
    assert_eq!(fake.remarks()[0].update, update);
    let err = client.remark("lisi", "wmDemoCustomer0001", &update).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::NO_RELATIONSHIP));

    let customers = vec!["wmDemoCustomer0004".to_owned(), "wmDemoCustomer0005".to_owned()];
    let err = client
        .resigned_transfer_customer("lisi", "lijing", &customers)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(40097), "lisi has not left yet");
    fake.set_member_status("lisi", 5);
    let started = client
        .resigned_transfer_customer("lisi", "lijing", &customers)
        .await
        .unwrap();
    assert!(started.iter().all(|c| c.errcode == 0), "{started:?}");
    let status = client.resigned_transfer_result("lisi", "lijing").await.unwrap();
    assert_eq!(status.len(), 2);
    assert!(status.iter().all(|s| s.status == 2));
}

/// Captures log output of the calls made on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_the_call_and_never_a_secret_or_token() {
    let (fake, client, _) = setup(|c| c.max_attempts = 2).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let token = client.token().await.unwrap();
    client.get_user("zhangsan").await.unwrap();
    fake.inject(Some("user/get"), FaultKind::Errcode(codes::SYSTEM_BUSY), 2);
    let _ = client.get_user("zhangsan").await;
    fake.expire_tokens();
    client.get_user("lisi").await.unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("user/get") && logs.contains("errcode"), "{logs}");
    assert!(logs.contains("latency_ms"), "{logs}");
    assert!(!logs.contains(&fake.fixture().secret), "secret leaked: {logs}");
    assert!(!logs.contains(&token), "token leaked: {logs}");
    assert!(!logs.contains("fake-token"), "token leaked: {logs}");
    assert!(!logs.contains("access_token="), "URL with token leaked: {logs}");
}

#[tokio::test]
async fn the_fake_sends_callbacks_exactly_as_wecom_does() {
    // A fake whose credentials are the app's, so its callbacks verify.
    let fixture = Fixture::empty(CORP_ID, AGENT_ID, "test-app-secret", TOKEN, AES_KEY);
    let fake = FakeWecom::start_local(fixture).await.unwrap();
    let app = TestApp::spawn_with(
        |c| c.wecom.api_base = fake.url(),
        Arc::new(wecom_scrm::inbox::UnhandledKinds),
    )
    .await;
    let inner = wecom_scrm::wecom::compose::text_message(
        CORP_ID,
        "zhangsan",
        "记 张伟 已报价",
        next_msg_id(),
        AGENT_ID,
        now_secs(),
    );
    let answer = fake.send_callback(&app.url("/wecom/callback"), &inner).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.reply, None);
    let rows = app.inbox_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].payload, inner);
}

//! Leads that find an owner and never rot: assignment rules on import, channel and departure;
//! the pool (公海) in chat with its caps, cooldown, undo and the claim race; the recycle job
//! once across instances with its warning; the score and segments; the rules and pool in the
//! admin API.

use reqwest::{Method, StatusCode};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use wecom_scrm::config::{AssignRule, DepartureRule};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::pool::{self, ClaimError, DAY_MS};
use wecom_scrm::db::entity::customer;
use wecom_scrm::db::entity::lead_assignment::{self, LeadAction};
use wecom_scrm::db::now_ms;
use wecom_scrm::jobs::leads;
use wecom_scrm::texts::local_date;

use crate::admin_api::{get, send, spawn_with};
use crate::helpers::*;

/// Imports `csv` through the admin API, which must accept it; the report.
async fn import(app: &TestApp, token: &str, csv: &str) -> Value {
    let (status, report) = crate::transfer::import(app, token, csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

async fn by_name(app: &TestApp, name: &str) -> customer::Model {
    customer::Entity::find()
        .filter(customer::Column::Name.eq(name))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no customer {name}"))
}

#[tokio::test]
async fn leads_imported_without_an_owner_go_round_robin_or_to_the_pool_and_reps_are_told() {
    let (app, admin, manager) = spawn_with(|c| {
        c.assignment.leads = AssignRule::RoundRobin;
        c.assignment.department = 2;
        c.web.public_url = "https://crm.example.com".into();
    })
    .await;
    let report = import(
        &app,
        &admin,
        "姓名,公司,电话,负责人\n甲一,甲公司,13900000001,\n乙二,乙公司,13900000002,\n丙三,丙公司,13900000003,\n丁四,丁公司,13900000004,rep3\n",
    )
    .await;
    assert_eq!(
        (report["created"].as_u64(), report["assigned"].as_u64()),
        (Some(4), Some(3)),
        "{report}"
    );
    // 销售一部 in userid order, one each: lead1, rep1, rep2.
    let owners: Vec<Option<String>> = [
        by_name(&app, "甲一").await,
        by_name(&app, "乙二").await,
        by_name(&app, "丙三").await,
    ]
    .into_iter()
    .map(|c| c.owner_userid)
    .collect();
    assert_eq!(owners, [Some("lead1".into()), Some("rep1".into()), Some("rep2".into())]);
    assert_eq!(
        by_name(&app, "丁四").await.owner_userid.as_deref(),
        Some("rep3"),
        "a named owner stays"
    );

    app.drive_deliveries().await;
    app.wait_for_notifications().await;
    let told = texts_to(&app, "rep1");
    let news = told
        .iter()
        .find(|t| t.contains("分配给你 1 位新线索"))
        .unwrap_or_else(|| panic!("rep1 is told: {told:?}"));
    assert!(news.contains("乙二(乙公司) · 13900000002"), "{news}");
    assert!(news.contains("https://crm.example.com/web/customers/lead%3A"), "{news}");
    app.drive_deliveries().await;
    app.wait_for_notifications().await;
    assert_eq!(
        texts_to(&app, "rep1").iter().filter(|t| t.contains("新线索")).count(),
        1,
        "told once"
    );
    assert!(
        texts_to(&app, "rep3").iter().all(|t| !t.contains("新线索")),
        "a named owner is not 'assigned'"
    );

    // A manager's token must name owners: the rules reach beyond its departments.
    let report = import(&app, &manager, "姓名,电话\n戊五,13900000005\n").await;
    assert_eq!(report["created"], 0, "{report}");
    assert!(
        report["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("owner is required"),
        "{report}"
    );

    // The admin switches to the pool: the next owner-less lead waits there.
    let (status, rules) = get(&app, &admin, "/api/v1/rules").await;
    assert_eq!((status, rules["source"].as_str()), (StatusCode::OK, Some("config")));
    assert_eq!(rules["assignment"]["leads"], "round_robin");
    let mut changed = rules.clone();
    changed.as_object_mut().unwrap().remove("source");
    changed["assignment"]["leads"] = json!("pool");
    let (status, _) = send(&app, Method::PUT, &manager, "/api/v1/rules", changed.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut wrong = changed.clone();
    wrong["pool"]["exempt_ratings"] = json!(["Z"]);
    let (status, problem) = send(&app, Method::PUT, &admin, "/api/v1/rules", wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, saved) = send(&app, Method::PUT, &admin, "/api/v1/rules", changed).await;
    assert_eq!(
        (status, saved["source"].as_str()),
        (StatusCode::OK, Some("admin")),
        "{saved}"
    );
    let report = import(&app, &admin, "姓名,电话\n戊五,13900000005\n").await;
    assert_eq!(report["pooled"], 1, "{report}");
    let (status, page) = get(&app, &manager, "/api/v1/pool?q=戊五").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (page["items"][0]["name"].as_str(), page["total"].as_u64()),
        (Some("戊五"), Some(1)),
        "{page}"
    );
    assert!(page["items"][0]["pooled_at"].is_string(), "{page}");

    // An admin gives it to a rep, or sends an owned lead to the pool.
    let id = by_name(&app, "戊五").await.id;
    let (status, assigned) = send(
        &app,
        Method::POST,
        &admin,
        &format!("/api/v1/pool/{id}/assign"),
        json!({ "userid": "rep3" }),
    )
    .await;
    assert_eq!(
        (status, assigned["owner"].as_str()),
        (StatusCode::OK, Some("rep3")),
        "{assigned}"
    );
    let (status, _) = send(
        &app,
        Method::POST,
        &admin,
        &format!("/api/v1/pool/{id}/assign"),
        json!({ "userid": "rep2" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "no longer in the pool");
    let (status, pooled) = send(
        &app,
        Method::POST,
        &admin,
        "/api/v1/pool",
        json!({ "customer_id": id, "reason": "重新分配" }),
    )
    .await;
    assert_eq!(
        (status, pooled["owner"].clone(), pooled["previous_owner"].as_str()),
        (StatusCode::OK, Value::Null, Some("rep3")),
        "{pooled}"
    );
}

#[tokio::test]
async fn reps_release_and_claim_in_chat_with_the_caps_the_cooldown_and_undo() {
    let app = spawn_imported(|c| c.pool.claims_per_day = 2).await;
    let reply = app.say("rep1", "退回 @张伟").await;
    assert!(reply.contains("请写明退回"), "{reply}");
    let reply = app.say("rep2", "退回 @刘洋 不是我的").await;
    assert!(reply.contains("刘洋 不是由你负责的，不能退回"), "{reply}");
    let reply = app.say("rep1", "退回 @张伟 联系不上，号码停机").await;
    assert!(
        reply.starts_with("↩️ 已把 张伟(华为) 退回公海（联系不上，号码停机）"),
        "{reply}"
    );
    let lead = by_name(&app, "张伟").await;
    assert_eq!(
        (lead.owner_userid.as_deref(), lead.previous_owner.as_deref()),
        (None, Some("rep1"))
    );

    let listed = app.say("rep1", "公海").await;
    assert!(
        listed.contains("1. 张伟(华为)") && listed.contains("联系不上"),
        "{listed}"
    );
    let refused = app.say("rep1", "领取 1").await;
    assert!(refused.contains("这条线索是你退回的"), "{refused}");

    // rep3 looks, rep2 is quicker.
    let seen = app.say("rep3", "pool").await;
    assert!(seen.contains("1. 张伟(华为)"), "{seen}");
    assert!(app.say("rep2", "公海 张伟").await.contains("1. 张伟(华为)"));
    let claimed = app.say("rep2", "领取 1").await;
    assert!(claimed.starts_with("✅ 已领取 张伟(华为)"), "{claimed}");
    let late = app.say("rep3", "claim 1").await;
    assert!(late.contains("Too late: 李四 has claimed that lead."), "{late}");
    let lead = by_name(&app, "张伟").await;
    assert_eq!((lead.owner_userid.as_deref(), lead.pooled_at), (Some("rep2"), None));
    // The claimer works on it at once: it is their current customer.
    assert!(app.say("rep2", "记 约了下周二见面").await.contains("张伟"));

    // Undo puts it back as it was; the undone claim does not count against the cap.
    let undone = app.say("rep2", "撤销").await;
    assert!(undone.contains("已撤销跟进"), "{undone}");
    let undone = app.say("rep2", "撤销").await;
    assert!(undone.contains("已撤销领取：张伟(华为) 回到公海"), "{undone}");
    assert_eq!(by_name(&app, "张伟").await.previous_owner.as_deref(), Some("rep1"));
    app.say("rep2", "公海").await;
    assert!(app.say("rep2", "领取 1").await.starts_with("✅"));
    app.say("rep1", "退回 @刘洋 预算取消").await;
    app.say("rep2", "公海").await;
    assert!(app.say("rep2", "领取 1").await.starts_with("✅ 已领取 刘洋"));
    app.say("rep3", "退回 @陈静 转给别人").await;
    app.say("rep2", "公海").await;
    let capped = app.say("rep2", "领取 1").await;
    assert!(capped.contains("今天已领取 2 条"), "{capped}");
    let claims = lead_assignment::Entity::find()
        .filter(lead_assignment::Column::Action.eq(LeadAction::Claimed))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(claims.len(), 2, "{claims:?}");
    // 详情 says it is in the pool.
    assert!(app.say("rep3", "详情 @陈静").await.contains("在公海中"));
}

#[tokio::test]
async fn two_reps_claiming_one_lead_at_once_one_wins() {
    let app = spawn_imported(|_| {}).await;
    let s = app.services();
    let stages = wecom_scrm::crm::stages::current(&app.db, &s.config).await.unwrap();
    let rules = wecom_scrm::config::PoolRules {
        reclaim_cooldown_days: 0,
        ..s.config.pool.clone()
    };
    for round in 0..5 {
        let lead = by_name(&app, "陈静").await;
        let owner = lead.owner_userid.clone();
        let txn = app.db.begin().await.unwrap();
        assert!(
            pool::to_pool(
                &txn,
                &Actor::System,
                &lead,
                owner.as_deref(),
                LeadAction::Pooled,
                "test",
                now_ms()
            )
            .await
            .unwrap()
        );
        txn.commit().await.unwrap();
        let claim = |userid: &'static str| {
            let (db, rules, stages) = (app.app_db.clone(), rules.clone(), stages.clone());
            tokio::spawn(async move {
                let txn = wecom_scrm::db::begin_write(&db).await.unwrap();
                let result = pool::claim(
                    &txn,
                    &rules,
                    &stages,
                    userid,
                    lead.id,
                    (now_ms(), chrono_tz::Asia::Shanghai),
                )
                .await;
                if result.is_ok() {
                    txn.commit().await.unwrap();
                }
                result
            })
        };
        let (a, b) = (claim("rep1"), claim("rep2"));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {a:?} / {b:?}");
        let lost = if a.is_ok() { b } else { a };
        assert!(
            matches!(lost, Err(ClaimError::Taken { owner: Some(_) })),
            "round {round}: {lost:?}"
        );
    }
}

/// Sets a customer's clocks as if its last follow-up was `days` ago and it is older than that.
async fn quiet_for(app: &TestApp, name: &str, days: f64) {
    let now = now_ms();
    let at = now - (days * DAY_MS as f64) as i64;
    customer::Entity::update_many()
        .col_expr(customer::Column::LastFollowUpAt, Expr::val(at))
        .col_expr(customer::Column::CreatedAt, Expr::val(now - 100 * DAY_MS))
        .col_expr(customer::Column::OwnerSince, Expr::val(Option::<i64>::None))
        .filter(customer::Column::Name.eq(name))
        .exec(&app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn rotting_leads_go_back_once_across_instances_after_a_warning() {
    let app = spawn_imported(|_| {}).await;
    quiet_for(&app, "张伟", 31.0).await;
    quiet_for(&app, "刘洋", 29.5).await;
    quiet_for(&app, "陈静", 40.0).await;
    customer::Entity::update_many()
        .col_expr(customer::Column::Rating, Expr::val("A"))
        .filter(customer::Column::Name.eq("陈静"))
        .exec(&app.db)
        .await
        .unwrap();
    let second = TestApp::start_real(app.test_db.share(), app.config.clone()).await;
    let (one, two) = (app.services(), second.services());
    // Both instances run each morning's pass at once; one of them does it.
    let run_on_both = |date: chrono::NaiveDate, now: i64| {
        let (one, two) = (one.clone(), two.clone());
        async move {
            let (a, b) = tokio::join!(
                leads::recycle(&one, date, now, now + DAY_MS),
                leads::recycle(&two, date, now, now + DAY_MS)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a.already_ran != b.already_ran, "{a:?} {b:?}");
            if a.already_ran { b } else { a }
        }
    };
    let now = now_ms();
    let today = local_date(now, one.tz());

    // Day 1: nothing goes without a warning the run before, so 张伟 (overdue) and 刘洋 (due by
    // tomorrow's run) are warned; 陈静 is rated A and stays.
    let first = run_on_both(today, now).await;
    assert_eq!((first.recycled, first.warned), (0, 1), "{first:?}");
    assert_eq!(by_name(&app, "张伟").await.owner_userid.as_deref(), Some("rep1"));
    app.drive_deliveries().await;
    app.wait_for_notifications().await;
    let told = texts_to(&app, "rep1");
    let warned: Vec<&String> = told.iter().filter(|t| t.contains("将退回公海")).collect();
    assert_eq!(warned.len(), 1, "{told:?}");
    assert!(
        warned[0].starts_with("⏳ 以下 2 位客户如不跟进") && warned[0].contains("刘洋"),
        "{}",
        warned[0]
    );
    assert!(!warned[0].contains("陈静"), "{}", warned[0]);
    assert!(
        leads::recycle(&one, today, now, now + DAY_MS)
            .await
            .unwrap()
            .already_ran
    );
    // A note after the warning keeps 刘洋.
    app.say("rep1", "记 @刘洋 回电了，下周报价").await;

    // Day 2: 张伟 goes back; the owner is told once, with why.
    let tomorrow = today.succ_opt().unwrap();
    let second_day = run_on_both(tomorrow, now + DAY_MS).await;
    assert_eq!((second_day.recycled, second_day.warned), (1, 0), "{second_day:?}");
    let zhang = by_name(&app, "张伟").await;
    assert_eq!(
        (zhang.owner_userid, zhang.pool_reason.as_deref()),
        (None, Some("32 天未跟进"))
    );
    assert_eq!(by_name(&app, "刘洋").await.owner_userid.as_deref(), Some("rep1"));
    assert_eq!(
        by_name(&app, "陈静").await.owner_userid.as_deref(),
        Some("rep3"),
        "rated A: exempt"
    );
    app.drive_deliveries().await;
    second.drive_deliveries().await;
    app.wait_for_notifications().await;
    let told = texts_to(&app, "rep1");
    let recycled: Vec<&String> = told.iter().filter(|t| t.contains("已退回公海")).collect();
    assert_eq!(recycled.len(), 1, "{told:?}");
    assert!(recycled[0].contains("张伟(华为)（32 天未跟进）"), "{}", recycled[0]);
    assert!(!recycled[0].contains("刘洋"), "{}", recycled[0]);

    // A lead listed as due but followed up before it moves stays: the update repeats the rule.
    let liu = by_name(&app, "刘洋").await;
    let stages = wecom_scrm::crm::stages::current(&app.db, &one.config).await.unwrap();
    let due = pool::due_condition(&one.config.pool, &stages, now).unwrap();
    let moved = pool::to_pool_if(
        &app.db,
        &Actor::System,
        &liu,
        (Some("rep1"), due),
        LeadAction::Recycled,
        "x",
        now,
    )
    .await
    .unwrap();
    assert!(!moved);
    second.stop().await;
}

#[tokio::test]
async fn a_departing_reps_customers_go_to_the_pool_or_by_rule_when_configured() {
    let app = spawn_imported(|c| c.assignment.departed = DepartureRule::Assign(AssignRule::Pool)).await;
    let s = app.services();
    wecom_scrm::events::apply_departure(&s, "rep3", now_ms(), &Actor::Wecom)
        .await
        .unwrap();
    let chen = by_name(&app, "陈静").await;
    assert_eq!(
        (chen.owner_userid, chen.previous_owner.as_deref()),
        (None, Some("rep3"))
    );
    assert!(chen.pooled_at.is_some());

    let app = spawn_imported(|c| c.assignment.departed = DepartureRule::Assign(AssignRule::RoundRobin)).await;
    let s = app.services();
    wecom_scrm::events::apply_departure(&s, "rep1", now_ms(), &Actor::Wecom)
        .await
        .unwrap();
    // 销售一部 without the departed rep: lead1 then rep2.
    let owners = [
        by_name(&app, "张伟").await.owner_userid,
        by_name(&app, "刘洋").await.owner_userid,
    ];
    assert_eq!(owners, [Some("lead1".to_owned()), Some("rep2".to_owned())]);
    app.drive_deliveries().await;
    app.wait_for_notifications().await;
    assert!(
        texts_to(&app, "rep2")
            .iter()
            .any(|t| t.contains("分配给你 1 位新线索（离职交接）"))
    );
}

#[tokio::test]
async fn a_channel_with_a_rule_gives_its_new_customers_to_whom_the_rule_picks() {
    let mut fixture = test_fixture();
    fixture
        .external_contacts
        .push(contact("wmN1", "新客户", "", &[("rep1", "", "expo")]));
    let app = TestApp::spawn_with_fake(fixture, |c| {
        c.channels = vec![wecom_scrm::config::ChannelSeed {
            state: "expo".into(),
            name: "展会二维码".into(),
            welcome: None,
            plan: None,
            assign: Some(AssignRule::List(vec!["rep2".into()])),
        }];
    })
    .await;
    wecom_scrm::sync::sync_org(&app.services(), &Actor::Sync, &mut |_| {})
        .await
        .unwrap();
    app.deliver(&add_event("rep1", "wmN1", Some("expo"), None)).await;
    let c = customer_by_external(&app, "wmN1").await;
    assert_eq!(c.owner_userid.as_deref(), Some("rep2"));
    app.drive_deliveries().await;
    app.wait_for_notifications().await;
    assert!(
        texts_to(&app, "rep2").iter().any(|t| t.contains("渠道「展会二维码」")),
        "{:?}",
        texts_to(&app, "rep2")
    );
    // rep1 still has them as a WeCom contact and may look them up.
    assert!(app.say("rep1", "详情 @新客户").await.contains("新客户"));
}

#[tokio::test]
async fn scores_follow_changes_explain_themselves_and_segment_the_customers() {
    let (app, admin, _) = spawn_with(|_| {}).await;
    app.say("rep1", "记 @张伟 已报价，等审批").await;
    app.say("rep1", "记 @张伟 对方说下周定").await;
    app.say("rep1", "评级 @张伟 A").await;
    app.say("rep1", "商机 @张伟 10万").await;
    app.drive_deliveries().await;
    app.wait_for_notifications().await;
    let zhang = by_name(&app, "张伟").await;
    assert!(zhang.score >= 58, "{zhang:?}");
    let explained = app.say("rep1", "评分 @张伟").await;
    assert!(
        explained.starts_with(&format!("📈 张伟(华为) 评分 {}", zhang.score)),
        "{explained}"
    );
    for line in [
        "跟进次数 8/20：近 90 天 2 条跟进",
        "跟进新鲜度 20/20",
        "销售阶段 5/25：初步接触",
        "评级 15/15：评级 A",
        "商机金额 10/10：进行中商机 100000 元",
    ] {
        assert!(explained.contains(line), "{line} in {explained}");
    }
    assert!(app.say("rep1", "score @张伟").await.contains("· follow-ups 8/20"));
    assert!(
        app.say("rep1", "详情 @张伟")
            .await
            .contains(&format!("评分：{}", zhang.score))
    );

    let (status, page) = get(&app, &admin, "/api/v1/customers?sort=score&limit=1").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["name"], "张伟", "{page}");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = get(&app, &admin, &format!("/api/v1/customers?sort=score&cursor={cursor}")).await;
    assert!(
        rest["items"].as_array().unwrap().iter().all(|c| c["name"] != "张伟"),
        "{rest}"
    );
    let segment = zhang.segment.clone().unwrap();
    let (_, same) = get(&app, &admin, &format!("/api/v1/customers?segment={segment}")).await;
    assert!(
        same["items"].as_array().unwrap().iter().any(|c| c["name"] == "张伟"),
        "{same}"
    );
    let (status, _) = get(&app, &admin, "/api/v1/customers?segment=vip").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A customer going cold moves to 风险; two passes at once record the move once.
    quiet_for(&app, "张伟", 25.0).await;
    let s = app.services();
    let stages = wecom_scrm::crm::stages::current(&app.db, &s.config).await.unwrap();
    let (mut quiet_a, mut quiet_b) = (|_| {}, |_| {});
    let (a, b) = tokio::join!(
        wecom_scrm::crm::score::refresh_all(&app.db, &s.config.scoring, &stages, now_ms(), &mut quiet_a),
        wecom_scrm::crm::score::refresh_all(&app.app_db, &s.config.scoring, &stages, now_ms(), &mut quiet_b)
    );
    assert_eq!(a.unwrap().changed + b.unwrap().changed, 1, "张伟 is written once");
    let moves = wecom_scrm::db::entity::audit::Entity::find()
        .filter(wecom_scrm::db::entity::audit::Column::Action.eq(wecom_scrm::crm::score::SEGMENT_MOVE))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(moves.len(), 1, "{moves:?}");
    // The nightly pass scores everyone, once per date.
    let today = local_date(now_ms(), s.tz());
    let detail = leads::score_pass(&s, today).await.unwrap();
    assert!(detail.starts_with("3 customers scored, 0 changed"), "{detail}");
    assert_eq!(leads::score_pass(&s, today).await.unwrap(), "already ran");
    let cold = by_name(&app, "张伟").await;
    assert_eq!(cold.segment.as_deref(), Some("at_risk"), "{cold:?}");
    let summary = app.say("lead1", "日报").await;
    assert!(summary.contains("客户分层") && summary.contains("→风险 1"), "{summary}");
    assert!(summary.contains("张伟(华为) · 张三"), "{summary}");
}

#[tokio::test]
async fn rules_skip_inactive_members_and_those_at_the_cap() {
    use wecom_scrm::crm::assign::{self, Among};
    let app = spawn_imported(|_| {}).await;
    let stages = wecom_scrm::crm::stages::current(&app.db, &app.services().config)
        .await
        .unwrap();
    let choose = |rule: AssignRule, cap: u32| {
        let (db, stages) = (app.db.clone(), stages.clone());
        async move {
            assign::choose(&db, (&rule, Among::Department(2), cap), &stages, None)
                .await
                .unwrap()
        }
    };
    // 销售一部: lead1 holds no open lead, rep1 two (张伟, 刘洋), rep2 none.
    assert_eq!(
        choose(AssignRule::LeastLoaded, 0).await,
        Some(("lead1".to_owned(), "least_loaded"))
    );
    assert_eq!(
        choose(AssignRule::List(vec!["rep1".into()]), 2).await,
        None,
        "rep1 is at the cap"
    );
    assert_eq!(
        choose(AssignRule::List(vec!["rep1".into(), "rep2".into()]), 2).await,
        Some(("rep2".to_owned(), "list"))
    );
    // A list takes turns in its own order, past whoever is not eligible now.
    let list = || AssignRule::List(vec!["rep2".into(), "rep1".into(), "lead1".into()]);
    assert_eq!(choose(list(), 0).await, Some(("rep2".to_owned(), "list")));
    assert_eq!(choose(list(), 0).await, Some(("rep1".to_owned(), "list")));
    assert_eq!(choose(list(), 0).await, Some(("lead1".to_owned(), "list")));
    assert_eq!(choose(list(), 0).await, Some(("rep2".to_owned(), "list")));
    // rep1 (two open leads) is at a cap of 2: the turn after rep2 passes to lead1.
    assert_eq!(choose(list(), 2).await, Some(("lead1".to_owned(), "list")));
    // A member who left is never picked.
    wecom_scrm::crm::members::depart(&app.db, "lead1", now_ms(), None, &Actor::Wecom)
        .await
        .unwrap();
    assert_eq!(
        choose(AssignRule::LeastLoaded, 0).await,
        Some(("rep2".to_owned(), "least_loaded"))
    );
    // Nobody eligible: the lead waits in the pool.
    let lead = by_name(&app, "陈静").await;
    let rule = AssignRule::List(vec!["lead1".into()]);
    let placed = assign::place(
        &app.db,
        &Actor::System,
        (&rule, Among::Everyone, 0),
        &stages,
        (&lead, None),
        "test",
        now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(placed, None);
    assert!(by_name(&app, "陈静").await.pooled_at.is_some());
}

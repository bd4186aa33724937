//! Deals (商机) in chat and how the customer's stage follows them; customers' stages from before
//! deals becoming deals once.

use chrono::Days;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::deals::{self, Field};
use wecom_scrm::crm::pipeline;
use wecom_scrm::db::entity::deal::{self, DealStatus};
use wecom_scrm::db::entity::{customer, deal_stage};
use wecom_scrm::db::now_ms;
use wecom_scrm::texts::local_date;

use crate::helpers::*;

async fn deals_of(app: &TestApp, customer_id: i64) -> Vec<deal::Model> {
    deal::Entity::find()
        .filter(deal::Column::CustomerId.eq(customer_id))
        .order_by_asc(deal::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

async fn stage_of(app: &TestApp, customer_id: i64) -> Option<String> {
    customer::Entity::find_by_id(customer_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .stage
}

#[tokio::test]
async fn a_deal_is_made_in_chat_with_its_amount_and_close_date_and_listed() {
    let app = spawn_imported(|_| {}).await;
    let c1 = customer_id(&app, "wmC1").await;
    let answer = app.say("rep1", "商机 @张伟 50万 3天后 二期项目").await;
    let close = local_date(now_ms(), app.services().tz()) + Days::new(3);
    assert_eq!(
        answer,
        format!("💼 商机已建：二期项目 · ¥50万 · 初步接触（10%） · 预计 {close} · 张伟(华为)")
    );
    let made = deals_of(&app, c1).await;
    assert_eq!(made.len(), 1);
    let d = &made[0];
    assert_eq!(
        (
            d.amount_fen,
            d.expected_close.clone(),
            d.owner_userid.as_str(),
            d.status
        ),
        (Some(50_000_000), Some(close.to_string()), "rep1", DealStatus::Open)
    );
    assert_eq!(stage_of(&app, c1).await.as_deref(), Some("初步接触"));
    // English, another amount form, no date; then the list.
    let answer = app.say("rep1", "deal @张伟 1.2m phase three").await;
    assert!(answer.starts_with("💼 Deal created: phase three · ¥120万"), "{answer}");
    let list = app.say("rep1", "商机").await;
    assert!(list.starts_with("💼 进行中的商机（2）· 合计 ¥170万"), "{list}");
    assert!(
        list.contains("1. 二期项目") && list.contains("2. phase three"),
        "{list}"
    );
}

#[tokio::test]
async fn an_amount_or_date_not_understood_is_said_and_nothing_is_made() {
    let app = spawn_imported(|_| {}).await;
    let c1 = customer_id(&app, "wmC1").await;
    let answer = app.say("rep1", "商机 @张伟 五十来万 二期").await;
    assert!(answer.starts_with("没看懂金额「五十来万」"), "{answer}");
    let answer = app.say("rep1", "商机 @张伟 50万 昨天 二期").await;
    assert!(answer.contains("已经过去"), "{answer}");
    assert!(deals_of(&app, c1).await.is_empty());
}

#[tokio::test]
async fn the_stage_moves_the_only_open_deal_or_asks_which() {
    let app = spawn_imported(|_| {}).await;
    let c1 = customer_id(&app, "wmC1").await;
    // No deal yet: `阶段` makes one in that stage.
    assert_eq!(
        app.say("rep1", "阶段 @张伟 方案报价").await,
        "📈 阶段：未设置 → 方案报价 · 张伟(华为)"
    );
    let first = deals_of(&app, c1).await.remove(0);
    assert_eq!((first.stage.as_str(), first.amount_fen), ("方案报价", None));
    // One open deal: it moves.
    app.say("rep1", "阶段 @张伟 商务谈判").await;
    assert_eq!(deals_of(&app, c1).await[0].stage, "商务谈判");
    // Two open deals: which one is asked, and the number picks it.
    app.say("rep1", "商机 @张伟 8万 备件").await;
    let asked = app.say("rep1", "阶段 @张伟 需求确认").await;
    assert!(asked.starts_with("张伟(华为) 有 2 个进行中的商机，是哪个？"), "{asked}");
    assert!(asked.contains("\n2. 备件 · ¥8万 · 初步接触（10%）"), "{asked}");
    assert_eq!(app.say("rep1", "2").await, "📈 商机「备件」：初步接触 → 需求确认");
    let both = deals_of(&app, c1).await;
    assert_eq!(both[1].stage, "需求确认");
    // The customer shows its most advanced open deal.
    assert_eq!(stage_of(&app, c1).await.as_deref(), Some("商务谈判"));
    let moves: Vec<(Option<String>, String)> = deal_stage::Entity::find()
        .filter(deal_stage::Column::DealId.eq(first.id))
        .order_by_asc(deal_stage::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.from_stage, m.to_stage))
        .collect();
    assert_eq!(
        moves,
        [
            (None, "方案报价".to_owned()),
            (Some("方案报价".to_owned()), "商务谈判".to_owned())
        ]
    );
    // `撤销` takes the last move back.
    assert!(app.say("rep1", "撤销").await.contains("恢复为「初步接触」"));
    assert_eq!(deals_of(&app, c1).await[1].stage, "初步接触");
}

#[tokio::test]
async fn deals_are_won_with_their_final_amount_and_lost_with_a_reason() {
    let app = spawn_imported(|_| {}).await;
    let c1 = customer_id(&app, "wmC1").await;
    app.say("rep1", "商机 @张伟 50万 二期").await;
    app.say("rep1", "商机 @张伟 8万 备件").await;
    // Two open: which one is asked.
    assert!(app.say("rep1", "赢单 @张伟 48万").await.contains("是哪个？"));
    assert_eq!(app.say("rep1", "1").await, "🎉 赢单：二期 · ¥48万");
    let won = deals_of(&app, c1).await.remove(0);
    assert_eq!(
        (won.status, won.amount_fen, won.stage.as_str()),
        (DealStatus::Won, Some(48_000_000), "赢单")
    );
    assert!(won.closed_at.is_some());
    // The other deal is still open: the customer shows it.
    assert_eq!(stage_of(&app, c1).await.as_deref(), Some("初步接触"));
    assert_eq!(
        app.say("rep1", "输单 @张伟 预算砍掉了").await,
        "📉 输单：备件 · 原因：预算砍掉了"
    );
    let lost = deals_of(&app, c1).await.remove(1);
    assert_eq!(lost.status, DealStatus::Lost);
    assert_eq!(lost.loss_reason.as_deref(), Some("预算砍掉了"));
    // Nothing open: the stage of the deal closed last.
    assert_eq!(stage_of(&app, c1).await.as_deref(), Some("输单"));
    assert!(app.say("rep1", "输单 @张伟").await.contains("输单 [@客户] <原因>"));
    assert!(app.say("rep1", "赢单 @张伟").await.contains("没有进行中的商机"));
}

#[tokio::test]
async fn customers_stages_from_before_deals_become_one_deal_each_once() {
    let app = spawn_imported(|_| {}).await;
    let c1 = customer_by_external(&app, "wmC1").await;
    let c2 = customer_by_external(&app, "wmC2").await;
    // Stages as they were set before deals existed.
    let actor = Actor::Member("rep1".into());
    deals::set(&app.db, &c1, Field::Stage, Some("方案报价".into()), &actor, now_ms())
        .await
        .unwrap();
    deals::set(&app.db, &c2, Field::Stage, Some("赢单".into()), &actor, now_ms())
        .await
        .unwrap();
    let config = app.services().config.clone();
    // The app's own start ran it on an empty database; run it as a fresh database would.
    wecom_scrm::db::entity::job_run::Entity::delete_many()
        .filter(wecom_scrm::db::entity::job_run::Column::Job.eq("deals_backfill"))
        .exec(&app.db)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        pipeline::backfill_once(&app.db, &config, now_ms()),
        pipeline::backfill_once(&app.db, &config, now_ms())
    );
    let made: Vec<Option<u64>> = vec![a.unwrap(), b.unwrap()];
    assert!(made.contains(&Some(2)) && made.contains(&None), "{made:?}");
    let d1 = deals_of(&app, c1.id).await;
    assert_eq!(d1.len(), 1);
    assert_eq!(
        (d1[0].stage.as_str(), d1[0].status, d1[0].amount_fen),
        ("方案报价", DealStatus::Open, None)
    );
    assert_eq!(d1[0].title, "张伟(华为)");
    let d2 = deals_of(&app, c2.id).await;
    assert_eq!((d2.len(), d2[0].status), (1, DealStatus::Won));
    assert_eq!(
        pipeline::backfill_once(&app.db, &config, now_ms()).await.unwrap(),
        None,
        "once"
    );
}

async fn api_get(app: &TestApp, token: &str, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn the_forecast_weighs_open_deals_by_month_against_the_target_in_chat_and_the_api() {
    use chrono::Months;
    use wecom_scrm::crm::forecast::{month_key, month_start};
    use wecom_scrm::crm::money::Amount;
    let (app, admin, manager) = crate::admin_api::spawn_with(|_| {}).await;
    let tz = app.services().tz();
    let this = month_key(local_date(now_ms(), tz));
    let first = month_start(&this).unwrap();
    let next = month_key(first + Months::new(1));
    let this_end = first + Months::new(1) - Days::new(1);
    let next_mid = first + Months::new(1) + Days::new(14);
    let stages = wecom_scrm::config::SalesConfig::default().stages;
    let (c1, c2, c3) = (
        customer_id(&app, "wmC1").await,
        customer_id(&app, "wmC2").await,
        customer_id(&app, "wmC3").await,
    );
    let make = |customer_id: i64,
                owner: &'static str,
                yuan: Option<i64>,
                close: Option<chrono::NaiveDate>,
                stage: &'static str| {
        let db = app.db.clone();
        let stages = stages.clone();
        async move {
            let new = pipeline::NewDeal {
                customer_id,
                owner: owner.into(),
                title: format!("{stage} {yuan:?}"),
                amount: yuan.map(Amount::from_yuan),
                expected_close: close,
                stage: Some(stage.into()),
            };
            pipeline::create(&db, &stages, new, &Actor::Member(owner.into()), now_ms())
                .await
                .unwrap()
        }
    };
    make(c1, "rep1", Some(1_000_000), Some(this_end), "初步接触").await; // 10 %: ¥10万
    let d2 = make(c2, "rep1", Some(400_000), Some(this_end), "方案报价").await; // 50 %: ¥20万
    make(c1, "rep1", Some(300_000), Some(next_mid), "商务谈判").await; // 75 % next month: ¥22.5万
    make(c2, "rep1", None, None, "需求确认").await; // no amount, no date
    let d5 = make(c3, "rep3", Some(500_000), Some(this_end), "初步接触").await;
    let won = make(c1, "rep1", Some(200_000), Some(this_end), "商务谈判").await;
    let lost = make(c2, "rep1", Some(50_000), Some(this_end), "初步接触").await;
    let actor = Actor::Member("rep1".into());
    pipeline::win(&app.db, &stages, &won, None, &actor, now_ms())
        .await
        .unwrap();
    pipeline::lose(&app.db, &stages, &lost, "价格", &actor, now_ms())
        .await
        .unwrap();
    pipeline::move_stage(&app.db, &stages, &d2, "方案报价", &actor, now_ms())
        .await
        .unwrap();

    let month_name = |key: &str| format!("{}月", key[5..7].parse::<u32>().unwrap());
    let answer = app.say("rep1", "预测").await;
    let lines: Vec<&str> = answer.lines().collect();
    assert_eq!(lines[0], "📈 我的商机：4 个进行中 · ¥170万", "{answer}");
    assert!(
        lines.contains(&"· 需求确认（25%）1 个 · ¥0（1 个金额未定）"),
        "{answer}"
    );
    assert!(
        lines.contains(&format!("加权预测：{} ¥30万 · {} ¥22.5万", month_name(&this), month_name(&next)).as_str()),
        "{answer}"
    );
    assert!(lines.contains(&"（另有 1 个商机没填成交时间，不在预测里）"), "{answer}");
    assert!(
        answer.contains("本月：赢单 1 个 · ¥20万；输单 1 个；赢率 50%；平均 0 天成交"),
        "{answer}"
    );

    // A target for rep1 this month, set by their leader's token.
    let response = app
        .client
        .put(app.url("/api/v1/targets"))
        .bearer_auth(&manager)
        .json(&serde_json::json!({ "member": "rep1", "month": this, "amount_fen": 100_000_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .client
        .put(app.url("/api/v1/targets"))
        .bearer_auth(&manager)
        .json(&serde_json::json!({ "member": "rep3", "month": this, "amount_fen": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "rep3 is not lead1's");
    assert!(
        app.say("rep1", "forecast")
            .await
            .contains("Target this month ¥100万: 20% won, 50% with the weighted forecast")
    );

    let (status, f) = api_get(&app, &admin, &format!("/api/v1/forecast?owner=rep1&month={this}")).await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["scope"], "member:rep1");
    let f = &f["forecast"];
    assert_eq!(f["open_deals"], 4);
    assert_eq!(f["open_amount_fen"], 170_000_000);
    assert_eq!(f["undated"], 1);
    assert_eq!(f["months"][0]["month"], this.as_str());
    assert_eq!(f["months"][0]["weighted_fen"], 30_000_000);
    assert_eq!(f["months"][0]["target_fen"], 100_000_000);
    assert_eq!(f["months"][0]["won_fen"], 20_000_000);
    assert_eq!(f["months"][1]["weighted_fen"], 22_500_000);
    assert_eq!(f["closed"]["win_rate"], 50);
    // A leader's token sees the team, not rep3's deals.
    let (_, team) = api_get(&app, &manager, "/api/v1/forecast").await;
    assert_eq!(team["forecast"]["open_deals"], 4, "{team}");
    let (_, everyone) = api_get(&app, &admin, "/api/v1/forecast").await;
    assert_eq!(everyone["forecast"]["open_deals"], 5, "{everyone}");
    let (status, _) = api_get(&app, &manager, "/api/v1/forecast?owner=rep3").await;
    assert_eq!(status, 403);
    let (status, problem) = api_get(&app, &admin, "/api/v1/forecast?month=2026-13").await;
    assert_eq!(status, 422, "{problem}");

    // The deals themselves.
    let (_, page) = api_get(&app, &admin, "/api/v1/deals?owner=rep1&status=open").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4, "{page}");
    let (_, page) = api_get(&app, &manager, "/api/v1/deals?limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = api_get(&app, &manager, &format!("/api/v1/deals?limit=50&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 4, "6 of rep1's in all: {rest}");
    let (status, _) = api_get(&app, &manager, &format!("/api/v1/deals/{}", d5.id)).await;
    assert_eq!(status, 404, "rep3's deal is not in lead1's scope");
    let (status, one) = api_get(&app, &manager, &format!("/api/v1/deals/{}", d2.id)).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["probability"], 50);
    assert_eq!(one["history"].as_array().unwrap().len(), 2, "{one}");
    assert_eq!(one["history"][1]["actor"], "rep1");
    let (_, closed) = api_get(&app, &admin, "/api/v1/deals?status=lost").await;
    assert_eq!(closed["items"][0]["loss_reason"], "价格");
    // The CSV export carries each customer's deals.
    let csv = app
        .client
        .get(app.url("/api/v1/export/customers.csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",进行中商机,商机金额,最近预计成交,赢单金额"),
        "{header}"
    );
    let zhang = csv.lines().find(|l| l.contains("wmC1")).unwrap();
    assert!(
        zhang.ends_with(&format!(",2,1300000.00,{this_end},200000.00")),
        "二期 100万 + 30万 open, 20万 won: {zhang}"
    );
    let (status, problem) = api_get(&app, &admin, "/api/v1/deals?status=maybe&close_from=12-31").await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "close_from"], "{problem}");
    // Writes: a leader's token changes a deal of their team, every change audited.
    let patch = |id: i64, body: serde_json::Value, token: String| {
        let (client, url) = (app.client.clone(), app.url(&format!("/api/v1/deals/{id}")));
        async move {
            let response = client.patch(url).bearer_auth(token).json(&body).send().await.unwrap();
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (status, changed) = patch(
        d2.id,
        serde_json::json!({ "amount_fen": 45_000_000, "probability": 80, "expected_close": next_mid.to_string() }),
        manager.clone(),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["amount_fen"].clone(), changed["probability"].clone()),
        (serde_json::json!(45_000_000), serde_json::json!(80))
    );
    assert_eq!(changed["expected_close"], next_mid.to_string());
    let (status, won) = patch(d2.id, serde_json::json!({ "stage": "赢单" }), manager.clone()).await;
    assert_eq!(
        (status, won["status"].clone()),
        (reqwest::StatusCode::OK, serde_json::json!("won")),
        "{won}"
    );
    app.wait_for_notifications().await;
    assert!(
        texts_to(&app, "lead1")
            .iter()
            .any(|t| t.starts_with("🎉 张三 赢单：方案报价")),
        "{:?}",
        texts_to(&app, "lead1")
    );
    let (status, audit) = api_get(&app, &admin, "/api/v1/audit?action=deal.updated").await;
    assert_eq!(status, 200);
    assert_eq!(audit["items"][0]["actor"], "token:lead1-app");
    assert_eq!(audit["items"][0]["detail"]["changes"]["probability"]["to"], 80);
    let (status, problem) = patch(
        d2.id,
        serde_json::json!({ "stage": "没有这个", "loss_reason": "x", "amount_fen": 0 }),
        admin.clone(),
    )
    .await;
    assert_eq!(status, 422);
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["/amount_fen", "/loss_reason", "/stage"], "{problem}");
    let (status, _) = patch(d5.id, serde_json::json!({ "title": "x" }), manager.clone()).await;
    assert_eq!(status, 404, "rep3's deal is not lead1's");
    let (status, _) = patch(d2.id, serde_json::json!({ "colour": 1 }), admin.clone()).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn leaders_hear_of_wins_and_of_large_deals_slipping_and_the_summary_shows_the_pipeline() {
    let app = spawn_imported(|c| {
        c.web.public_url = "https://crm.example.com".into();
    })
    .await;
    let c1 = customer_id(&app, "wmC1").await;
    app.say("rep1", "商机 @张伟 80万 二期").await;
    app.say("rep1", "商机 @张伟 9万 备件").await;
    app.say("rep1", "赢单 @张伟 9万").await;
    app.say("rep1", "2").await;
    app.wait_for_notifications().await;
    let told = texts_to(&app, "lead1");
    assert!(
        told.iter().any(|t| t == "🎉 张三 赢单：备件 · ¥9万 · 张伟(华为)"),
        "{told:?}"
    );

    // The large one's close date passes: lead1 is told, once per close date.
    let big = deals_of(&app, c1).await.remove(0);
    let yesterday = local_date(now_ms(), app.services().tz()) - Days::new(1);
    deal::Entity::update_many()
        .col_expr(
            deal::Column::ExpectedClose,
            sea_orm::sea_query::Expr::val(yesterday.to_string()),
        )
        .filter(deal::Column::Id.eq(big.id))
        .exec(&app.db)
        .await
        .unwrap();
    let today = local_date(now_ms(), app.services().tz());
    let s = app.services();
    assert_eq!(
        wecom_scrm::report::pipeline::large_deals_slipping(&s, today)
            .await
            .unwrap(),
        1
    );
    wecom_scrm::report::pipeline::large_deals_slipping(&s, today)
        .await
        .unwrap();
    app.wait_for_notifications().await;
    let slipped: Vec<String> = texts_to(&app, "lead1")
        .into_iter()
        .filter(|t| t.starts_with("⏳ 大单延期：二期"))
        .collect();
    assert_eq!(slipped.len(), 1, "once: {slipped:?}");

    // The summary: the pipeline, the month's forecast against the team's target, the dashboard.
    let month = wecom_scrm::crm::forecast::month_key(today);
    wecom_scrm::crm::forecast::set_target(
        &app.db,
        "member",
        "rep1",
        &month,
        Some(wecom_scrm::crm::money::Amount::from_yuan(90_000)),
        now_ms(),
    )
    .await
    .unwrap();
    let summary = app.say("lead1", "日报").await;
    assert!(summary.contains("商机与预测"), "{summary}");
    assert!(summary.contains("进行中 1 个 · ¥80万"), "{summary}");
    assert!(summary.contains("已赢单 ¥9万 · 目标 ¥9万（已完成 100%"), "{summary}");
    assert!(
        summary.contains("销售看板：https://crm.example.com/web/dashboard"),
        "{summary}"
    );
}

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

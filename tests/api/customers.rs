//! Customers captured from WeCom, end to end: the fake WeCom sends the encrypted callback, the
//! service handles it, and the database and the messages pushed through the fake are checked.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use wecom_scrm::db::entity::{audit, customer, follow_up, follower, member, reminder};
use wecom_scrm::inbox::{self as store, RetryTarget};
use wecom_scrm::wecom::compose::{self, ExternalContactExtras};

use wecom_scrm::db::entity::reminder::{DeliveryState, ReminderStatus};

use crate::helpers::*;
use wecom_scrm::db::entity::inbox::InboxStatus;

async fn relation(app: &TestApp, customer_id: i64, userid: &str) -> follower::Model {
    follower::Entity::find()
        .filter(follower::Column::CustomerId.eq(customer_id))
        .filter(follower::Column::Userid.eq(userid))
        .one(&app.db)
        .await
        .unwrap()
        .expect("relation exists")
}

/// The app against the fake, with the org already synced (as the first org sync does in service).
async fn spawn_synced(
    fixture: wecom_scrm::wecom::fake::Fixture,
    configure: impl FnOnce(&mut wecom_scrm::config::Config),
) -> TestApp {
    let app = TestApp::spawn_with_fake(fixture, configure).await;
    wecom_scrm::sync::sync_org(&app.services(), &wecom_scrm::crm::audit::Actor::Sync, &mut |_| {})
        .await
        .unwrap();
    app
}

async fn spawn() -> TestApp {
    spawn_synced(test_fixture(), |c| {
        c.channels = vec![wecom_scrm::config::ChannelSeed {
            state: "expo".into(),
            name: "展会二维码".into(),
            welcome: Some("您好{name}，感谢在展会扫码，我是{rep}。".into()),
            plan: None,
            assign: None,
        }];
    })
    .await
}

#[tokio::test]
async fn a_customer_adding_a_rep_is_captured_welcomed_and_announced_once() {
    let app = spawn().await;
    let add = add_event("rep1", "wmC1", Some("expo"), Some("WELCOME-1"));
    let row = app.deliver(&add).await;
    assert_eq!(row.status, InboxStatus::Processed, "{row:?}");

    let c = customer_by_external(&app, "wmC1").await;
    assert_eq!(
        (c.name.as_str(), c.corp_name.as_str(), c.contact_type),
        ("张伟", "华为", 2)
    );
    assert_eq!(c.owner_userid.as_deref(), Some("rep1"));
    assert_eq!(c.first_state.as_deref(), Some("expo"));
    assert!(!c.pending);
    let r = relation(&app, c.id, "rep1").await;
    assert_eq!(r.remark, "张总-华为采购 13800000001");
    assert!(r.removed_at.is_none());

    let welcomes = app.fake().welcomes();
    assert_eq!(welcomes.len(), 1);
    assert_eq!(welcomes[0].welcome_code, "WELCOME-1");
    assert_eq!(welcomes[0].text, "您好张伟，感谢在展会扫码，我是张三。");

    app.wait_for_notifications().await;
    let texts = texts_to(&app, "rep1");
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].starts_with("🆕 新客户：张伟(华为)\n来源：展会二维码"),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].contains("记 @张伟"),
        "tells how to log a first note: {}",
        texts[0]
    );

    // WeCom retries the callback, and an operator replays the row: nothing changes, nothing is sent twice.
    app.fake()
        .send_callback(&app.url("/wecom/callback"), &add)
        .await
        .unwrap();
    store::retry(&app.db, RetryTarget::Id(row.id)).await.unwrap();
    let replayed = app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].status, InboxStatus::Processed);
    app.wait_for_notifications().await;
    assert_eq!(texts_to(&app, "rep1").len(), 1);
    assert_eq!(app.fake().welcomes().len(), 1);
    let after = relation(&app, c.id, "rep1").await;
    assert_eq!(
        (after.remark, after.removed_at, after.added_at),
        (r.remark, r.removed_at, r.added_at)
    );
    assert_eq!(customer_by_external(&app, "wmC1").await.owner_userid, c.owner_userid);
    let added = audit::Entity::find()
        .filter(audit::Column::Action.eq("customer.added"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
}

#[tokio::test]
async fn unknown_states_are_kept_and_the_default_welcome_is_used() {
    let app = spawn().await;
    app.deliver(&add_event("rep3", "wmC3", Some("booth-7"), Some("W2")))
        .await;
    let c = customer_by_external(&app, "wmC3").await;
    assert_eq!(c.first_state.as_deref(), Some("booth-7"));
    assert_eq!(
        app.fake().welcomes()[0].text,
        "您好陈静，我是王五，很高兴为您服务！有任何问题随时在这里找我。"
    );
    app.wait_for_notifications().await;
    assert!(texts_to(&app, "rep3")[0].contains("来源：booth-7"));

    // Without a state the source says so.
    app.deliver(&add_event("rep2", "wmC2", None, None)).await;
    app.wait_for_notifications().await;
    assert!(texts_to(&app, "rep2")[0].contains("来源：未标记来源"));
    assert_eq!(app.fake().welcomes().len(), 1, "no welcome code, no welcome");
}

#[tokio::test]
async fn a_half_add_is_pending_until_the_full_add() {
    let app = spawn().await;
    let half = compose::external_contact_event(
        CORP_ID,
        "add_half_external_contact",
        "rep1",
        "wmC1",
        &ExternalContactExtras {
            state: Some("expo"),
            ..Default::default()
        },
        now_secs(),
    );
    app.deliver(&half).await;
    assert!(customer_by_external(&app, "wmC1").await.pending);
    app.deliver(&add_event("rep1", "wmC1", Some("expo"), None)).await;
    assert!(!customer_by_external(&app, "wmC1").await.pending);
}

#[tokio::test]
async fn edits_refresh_the_relation_and_unknown_customers_are_fetched() {
    let app = spawn().await;
    app.deliver(&add_event("rep1", "wmC1", Some("expo"), None)).await;
    let mut changed = contact("wmC1", "张伟", "华为技术", &[("rep1", "张总-已报价", "expo")]);
    changed.follow_user[0].description = "关注交付周期".into();
    app.fake().upsert_contact(changed);
    app.deliver(&contact_event("edit_external_contact", "rep1", "wmC1"))
        .await;
    let c = customer_by_external(&app, "wmC1").await;
    assert_eq!(c.corp_name, "华为技术");
    let r = relation(&app, c.id, "rep1").await;
    assert_eq!(
        (r.remark.as_str(), r.description.as_str()),
        ("张总-已报价", "关注交付周期")
    );

    let edit = contact_event("edit_external_contact", "rep1", "wmC1");
    let edits = || async {
        audit::Entity::find()
            .filter(audit::Column::Action.eq("customer.edited"))
            .all(&app.db)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(edits().await, 1);
    let row = app.deliver(&edit).await;
    store::retry(&app.db, RetryTarget::Id(row.id)).await.unwrap();
    app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    assert_eq!(edits().await, 1, "a replayed edit records nothing new");

    // An edit for a customer never added here: fetched and recorded, not refused.
    let row = app
        .deliver(&contact_event("edit_external_contact", "rep3", "wmC3"))
        .await;
    assert_eq!(row.status, InboxStatus::Processed);
    assert_eq!(customer_by_external(&app, "wmC3").await.name, "陈静");
}

#[tokio::test]
async fn a_rep_deleting_a_customer_closes_the_relation_and_marks_the_risk() {
    let app = spawn().await;
    app.deliver(&add_event("rep1", "wmC1", Some("expo"), None)).await;
    app.wait_for_notifications().await;
    app.deliver(&contact_event("del_external_contact", "rep1", "wmC1"))
        .await;
    let c = customer_by_external(&app, "wmC1").await;
    let r = relation(&app, c.id, "rep1").await;
    assert_eq!(r.removed_by.as_deref(), Some("member"));
    assert!(r.removed_at.is_some());
    assert!(c.at_risk);
    assert_eq!(c.at_risk_reason.as_deref(), Some("张三删除了客户"));
    app.wait_for_notifications().await;
    assert_eq!(
        texts_to(&app, "rep1").len(),
        1,
        "only the new-customer notice; no alert for one's own deletion"
    );

    // A deletion by an on-the-job transfer is not churn.
    app.deliver(&add_event("rep2", "wmC2", None, None)).await;
    let transfer = compose::external_contact_event(
        CORP_ID,
        "del_external_contact",
        "rep2",
        "wmC2",
        &ExternalContactExtras {
            source: Some("DELETE_BY_TRANSFER"),
            ..Default::default()
        },
        now_secs(),
    );
    app.deliver(&transfer).await;
    let c2 = customer_by_external(&app, "wmC2").await;
    assert_eq!(
        relation(&app, c2.id, "rep2").await.removed_by.as_deref(),
        Some("transfer")
    );
    assert!(!c2.at_risk);
}

#[tokio::test]
async fn a_customer_deleting_the_rep_alerts_the_rep_and_the_leader_once() {
    let app = spawn().await;
    app.deliver(&add_event("rep1", "wmC1", Some("expo"), None)).await;
    let c = customer_by_external(&app, "wmC1").await;
    let mut staged = customer::ActiveModel {
        id: Set(c.id),
        ..Default::default()
    };
    staged.stage = Set(Some("方案报价".into()));
    staged.update(&app.db).await.unwrap();
    follow_up::ActiveModel {
        customer_id: Set(c.id),
        author_userid: Set("rep1".into()),
        content: Set("已报价，等待对方采购审批".into()),
        kind: Set("note".into()),
        created_at: Set(wecom_scrm::db::now_ms()),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();

    let lost = contact_event("del_follow_user", "rep1", "wmC1");
    let row = app.deliver(&lost).await;
    let c = customer_by_external(&app, "wmC1").await;
    assert_eq!(
        relation(&app, c.id, "rep1").await.removed_by.as_deref(),
        Some("customer")
    );
    assert!(c.at_risk);
    assert_eq!(c.at_risk_reason.as_deref(), Some("客户删除了张三"));
    app.wait_for_notifications().await;
    let to_rep = texts_to(&app, "rep1");
    let alert = to_rep.last().unwrap();
    assert!(alert.starts_with("⚠️ 客户删除了你：张伟(华为)"), "{alert}");
    assert!(
        alert.contains("阶段：方案报价") && alert.contains("已报价，等待对方采购审批"),
        "{alert}"
    );
    let to_leader = texts_to(&app, "lead1");
    assert_eq!(to_leader.len(), 1);
    assert!(
        to_leader[0].starts_with("⚠️ 客户流失：张伟(华为) 删除了 张三"),
        "{}",
        to_leader[0]
    );
    assert!(
        texts_to(&app, "boss").is_empty(),
        "the nearest leader is told, not the whole chain"
    );

    store::retry(&app.db, RetryTarget::Id(row.id)).await.unwrap();
    app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    app.wait_for_notifications().await;
    assert_eq!(texts_to(&app, "lead1").len(), 1, "a replay alerts nobody again");
    assert_eq!(texts_to(&app, "rep1").len(), to_rep.len());
}

#[tokio::test]
async fn a_deletion_of_a_customer_never_seen_is_recorded() {
    let app = spawn().await;
    let row = app.deliver(&contact_event("del_follow_user", "rep3", "wmC3")).await;
    assert_eq!(row.status, InboxStatus::Processed);
    let c = customer_by_external(&app, "wmC3").await;
    assert_eq!(c.name, "陈静", "fetched while WeCom still knew it");
    assert_eq!(
        relation(&app, c.id, "rep3").await.removed_by.as_deref(),
        Some("customer")
    );

    // Not even WeCom knows this one any more: a bare record keeps the history.
    app.deliver(&contact_event("del_external_contact", "rep1", "wmGone"))
        .await;
    let gone = customer_by_external(&app, "wmGone").await;
    assert!(gone.name.is_empty());
    assert_eq!(
        relation(&app, gone.id, "rep1").await.removed_by.as_deref(),
        Some("member")
    );
}

#[tokio::test]
async fn a_failed_transfer_tells_the_takeover_rep_why() {
    let app = spawn().await;
    app.deliver(&add_event("rep1", "wmC1", None, None)).await;
    let fail = compose::external_contact_event(
        CORP_ID,
        "transfer_fail",
        "rep2",
        "wmC1",
        &ExternalContactExtras {
            fail_reason: Some("customer_refused"),
            ..Default::default()
        },
        now_secs(),
    );
    let row = app.deliver(&fail).await;
    app.wait_for_notifications().await;
    assert_eq!(
        texts_to(&app, "rep2"),
        vec!["⚠️ 客户接替失败：张伟(华为)\n原因：客户拒绝了接替".to_owned()]
    );
    store::retry(&app.db, RetryTarget::Id(row.id)).await.unwrap();
    app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    let records = audit::Entity::find()
        .filter(audit::Column::Action.eq("transfer.failed"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "a replay records nothing new");
}

#[tokio::test]
async fn the_daily_mass_deletion_alarm_fires_once() {
    let mut fixture = test_fixture();
    for i in 0..4 {
        fixture.external_contacts.push(contact(
            &format!("wmMass{i}"),
            &format!("客户{i}"),
            "",
            &[("rep1", "", "")],
        ));
    }
    let app = spawn_synced(fixture, |c| c.customers.mass_deletion_threshold = 2).await;
    for i in 0..4 {
        app.deliver(&add_event("rep1", &format!("wmMass{i}"), None, None)).await;
    }
    for i in 0..4 {
        app.deliver(&contact_event("del_follow_user", "rep1", &format!("wmMass{i}")))
            .await;
    }
    app.wait_for_notifications().await;
    let alarms: Vec<String> = texts_to(&app, "lead1")
        .into_iter()
        .filter(|t| t.starts_with("🚨"))
        .collect();
    assert_eq!(
        alarms,
        vec!["🚨 张三 今天已失去 3 位客户（客户删除或员工删除），请及时关注。".to_owned()]
    );
}

#[tokio::test]
async fn members_are_created_updated_and_renamed_from_events() {
    let app = spawn().await;
    app.deliver(&compose::contact_event(CORP_ID, "create_user", "rep2", now_secs()))
        .await;
    let m = member::Entity::find_by_id("rep2".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.name.as_str(), m.active, m.main_department), ("李四", true, Some(2)));

    app.deliver(&add_event("rep2", "wmC2", None, None)).await;
    let renamed = format!(
        "<xml><ToUserName>{CORP_ID}</ToUserName><FromUserName>sys</FromUserName><CreateTime>{}</CreateTime><MsgType>event</MsgType><Event>change_contact</Event><ChangeType>update_user</ChangeType><UserID>rep2</UserID><NewUserID>rep2new</NewUserID><Name>李四</Name><Department>2</Department></xml>",
        now_secs()
    );
    let row = app.deliver(&renamed).await;
    assert_eq!(row.status, InboxStatus::Processed, "{row:?}");
    assert!(
        member::Entity::find_by_id("rep2".to_owned())
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    let c = customer_by_external(&app, "wmC2").await;
    assert_eq!(c.owner_userid.as_deref(), Some("rep2new"));
    relation(&app, c.id, "rep2new").await;
}

#[tokio::test]
async fn a_departing_rep_hands_customers_and_reminders_to_the_leader_with_history() {
    let app = spawn_synced(test_fixture(), |c| c.customers.resigned_transfer = true).await;
    for (rep, external) in [("rep1", "wmC1"), ("rep1", "wmC2"), ("rep2", "wmC2")] {
        app.deliver(&add_event(rep, external, None, None)).await;
    }
    let c1 = customer_by_external(&app, "wmC1").await;
    let now = wecom_scrm::db::now_ms();
    follow_up::ActiveModel {
        customer_id: Set(c1.id),
        author_userid: Set("rep1".into()),
        content: Set("首次拜访".into()),
        kind: Set("note".into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    for (status, text) in [(ReminderStatus::Open, "回电话"), (ReminderStatus::Done, "发资料")] {
        reminder::ActiveModel {
            customer_id: Set(Some(c1.id)),
            owner_userid: Set("rep1".into()),
            created_by: Set("rep1".into()),
            text: Set(text.into()),
            due_at: Set(now + 3_600_000),
            status: Set(status),
            source: Set("manual".into()),
            delivery_state: Set(DeliveryState::Pending),
            attempts: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    app.wait_for_notifications().await;

    app.fake().set_member_status("rep1", 5);
    let left = compose::contact_event(CORP_ID, "delete_user", "rep1", now_secs());
    let row = app.deliver(&left).await;
    assert_eq!(row.status, InboxStatus::Processed, "{row:?}");
    let m = member::Entity::find_by_id("rep1".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!m.active && m.left_at.is_some());
    for external in ["wmC1", "wmC2"] {
        assert_eq!(
            customer_by_external(&app, external).await.owner_userid.as_deref(),
            Some("lead1")
        );
    }
    let reminders = reminder::Entity::find().all(&app.db).await.unwrap();
    let open = reminders.iter().find(|r| r.status == ReminderStatus::Open).unwrap();
    let done = reminders.iter().find(|r| r.status == ReminderStatus::Done).unwrap();
    assert_eq!(open.owner_userid, "lead1", "open reminders move");
    assert_eq!(done.owner_userid, "rep1", "finished ones stay as history");
    let notes = follow_up::Entity::find()
        .filter(follow_up::Column::CustomerId.eq(c1.id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "follow-ups stay with the customer");
    assert!(
        relation(&app, c1.id, "rep1").await.removed_at.is_none(),
        "WeCom still has the relation until its transfer"
    );

    app.wait_for_notifications().await;
    let received = texts_to(&app, "lead1");
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(
        received[0].starts_with("📥 张三 已离职，其 2 位客户已转交给你，1 条待办提醒也已转给你。"),
        "{}",
        received[0]
    );
    assert_eq!(
        app.fake().calls("externalcontact/resigned/transfer_customer"),
        1,
        "WeCom's transfer started too"
    );

    store::retry(&app.db, RetryTarget::Id(row.id)).await.unwrap();
    app.wait_until_settled(std::time::Duration::from_secs(10)).await;
    app.wait_for_notifications().await;
    assert_eq!(texts_to(&app, "lead1").len(), 1, "replaying the departure does nothing");
}

#[tokio::test]
async fn a_departing_leader_hands_over_to_the_leader_above() {
    let app = spawn_synced(test_fixture(), |_| {}).await;
    app.deliver(&add_event("lead2", "wmC3", None, None)).await;
    app.deliver(&compose::contact_event(CORP_ID, "delete_user", "lead2", now_secs()))
        .await;
    assert_eq!(
        customer_by_external(&app, "wmC3").await.owner_userid.as_deref(),
        Some("boss")
    );
}

#[tokio::test]
async fn with_no_leader_left_the_fallback_member_takes_over() {
    let app = spawn_synced(test_fixture(), |c| c.customers.handover_fallback = "rep3".into()).await;
    app.deliver(&add_event("boss", "wmC1", None, None)).await;
    app.deliver(&compose::contact_event(CORP_ID, "delete_user", "boss", now_secs()))
        .await;
    assert_eq!(
        customer_by_external(&app, "wmC1").await.owner_userid.as_deref(),
        Some("rep3")
    );
    app.wait_for_notifications().await;
    assert!(texts_to(&app, "rep3")[0].starts_with("📥 王总 已离职，其 1 位客户已转交给你"));
}

#[tokio::test]
async fn with_no_successor_at_all_the_customers_keep_their_owner() {
    let app = spawn_synced(test_fixture(), |_| {}).await;
    app.deliver(&add_event("boss", "wmC1", None, None)).await;
    let row = app
        .deliver(&compose::contact_event(CORP_ID, "delete_user", "boss", now_secs()))
        .await;
    assert!(row.outcome.unwrap().contains("no successor"));
    assert_eq!(
        customer_by_external(&app, "wmC1").await.owner_userid.as_deref(),
        Some("boss")
    );
}

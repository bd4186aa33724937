//! The managers' dashboard over HTTP: a leader sees their departments, a dashboard admin the whole
//! org, a rep is refused; its figures are the forecast API's for the same scope.

use reqwest::StatusCode;

use super::{forecast_as_leader, signed_in, spawn_web};

/// Deals and notes of two teams: lead1's (rep1, rep2) and lead2's (rep3).
async fn seed(app: &crate::helpers::TestApp) {
    for (who, line) in [
        ("rep1", "商机 @张伟 50万 二期项目"),
        ("rep1", "阶段 @张伟 方案报价"),
        ("rep1", "记 @张伟 方案已发"),
        ("rep2", "商机 @刘洋 8万 备件"),
        ("rep2", "赢单 @刘洋"),
        ("rep3", "商机 @陈静 120万 新厂"),
    ] {
        let answer = app.say(who, line).await;
        assert!(!answer.contains("没看懂"), "{line}: {answer}");
    }
}

fn attribute(html: &str, name: &str) -> String {
    let start = html
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("{name} in the page"))
        + name.len()
        + 2;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn a_leader_sees_the_team_an_admin_the_org_and_a_rep_is_refused() {
    let app = spawn_web(|c| c.web.dashboard_admins = vec!["boss".into()]).await;
    seed(&app).await;
    let api = forecast_as_leader(&app, "lead1").await;

    let lead = signed_in(&app, "lead1").await;
    let page = lead.get(&app.url("/web/dashboard")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("销售看板") && html.contains("我的团队"), "{html}");
    assert_eq!(
        attribute(&html, "data-open-deals"),
        api["forecast"]["open_deals"].to_string()
    );
    assert_eq!(
        attribute(&html, "data-open-deals"),
        "1",
        "rep1's deal; rep2's is won, rep3 is not lead1's"
    );
    assert_eq!(
        attribute(&html, "data-weighted-fen"),
        api["forecast"]["months"][0]["weighted_fen"].to_string()
    );
    assert_eq!(attribute(&html, "data-won-deals"), "1");
    assert!(
        html.contains("<svg") && html.contains("方案报价（50%）"),
        "the funnel is drawn"
    );
    assert!(
        !html.contains("新厂") && !html.contains("陈静"),
        "nothing of lead2's team"
    );

    let boss = signed_in(&app, "boss").await;
    let html = boss.get(&app.url("/web/dashboard?lang=en")).await.text().await.unwrap();
    assert!(
        html.contains("Sales dashboard") && html.contains("Whole company"),
        "{html}"
    );
    assert_eq!(attribute(&html, "data-open-deals"), "2");

    let rep = signed_in(&app, "rep1").await;
    let refused = rep.get(&app.url("/web/dashboard")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("只有负责人可以查看"));
}

/// The activity chart reads follow-ups from their daily roll-up: kept by notes and undos, and
/// rebuilt from the notes when the org's zone changes — once.
#[tokio::test]
async fn follow_ups_per_day_are_kept_on_write_and_rebuilt_per_zone() {
    use wecom_scrm::crm::{activity, dashboard};
    let app = spawn_web(|c| c.web.dashboard_admins = vec!["boss".into()]).await;
    seed(&app).await;
    for line in ["记 @张伟 第二次拜访", "记 @张伟 第三次拜访"] {
        app.say("rep1", line).await;
    }
    assert!(app.say("rep1", "撤销").await.contains("已撤销"));
    let tz = app.config.org.tz();
    let today = |d: &dashboard::Dashboard| d.activity.last().unwrap().follow_ups;
    let rep1 = |d: &dashboard::Dashboard| {
        d.reps
            .iter()
            .find(|r| r.userid == "rep1")
            .map(|r| r.follow_ups_30d)
            .unwrap()
    };
    let build = || async {
        dashboard::build(
            &app.db,
            &app.config,
            &dashboard::Viewer::Admin,
            wecom_scrm::db::now_ms(),
            tz,
        )
        .await
        .unwrap()
    };
    let kept = build().await;
    assert_eq!((today(&kept), rep1(&kept)), (2, 2), "two notes of rep1's three stand");
    // A note taken back twice counts once.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use wecom_scrm::db::entity::follow_up;
    let undone = follow_up::Entity::find()
        .filter(follow_up::Column::DeletedAt.is_not_null())
        .one(&app.db)
        .await
        .unwrap()
        .expect("the undone note is kept");
    wecom_scrm::crm::followups::remove(&app.db, undone.id, wecom_scrm::db::now_ms(), tz)
        .await
        .unwrap();
    assert_eq!(rep1(&build().await), 2);
    assert_eq!(activity::rebuild(&app.db, tz).await.unwrap(), 1, "one member day");
    let rebuilt = build().await;
    assert_eq!(rebuilt.activity, kept.activity);

    // A zone the table is not in is rebuilt once; the first zone again rebuilds it back.
    let elsewhere: chrono_tz::Tz = "America/Los_Angeles".parse().unwrap();
    assert_eq!(
        activity::rebuild_once(&app.db, tz).await.unwrap(),
        None,
        "built at start"
    );
    assert_eq!(activity::rebuild_once(&app.db, elsewhere).await.unwrap(), Some(1));
    assert_eq!(activity::rebuild_once(&app.db, elsewhere).await.unwrap(), None);
    assert_eq!(activity::rebuild_once(&app.db, tz).await.unwrap(), Some(1));
    assert_eq!(build().await.activity, kept.activity);
}

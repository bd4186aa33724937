//! Synchronisation with WeCom: the org sync, reconciliation, the (resumable) customer import — also
//! 10,000 customers across 50 reps through the real `sync` command — search, and the schedule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use wecom_scrm::crm::audit::Actor;
use wecom_scrm::crm::search::search_customers;
use wecom_scrm::db::entity::{customer, follower, job_run, member, member_department};
use wecom_scrm::sync::{self, Progress};
use wecom_scrm::wecom::api::types::Department;
use wecom_scrm::wecom::fake::fixture::FixtureMember;
use wecom_scrm::wecom::fake::{FakeWecom, FaultKind, Fixture};

use crate::cli::{command, output_async};
use crate::helpers::*;
use wecom_scrm::db::entity::job_run::RunStatus;

async fn external_ids(app: &TestApp, userid: &str, active: bool) -> Vec<String> {
    let relations = follower::Entity::find()
        .filter(follower::Column::Userid.eq(userid))
        .filter(if active {
            follower::Column::RemovedAt.is_null()
        } else {
            follower::Column::RemovedAt.is_not_null()
        })
        .all(&app.db)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for r in relations {
        ids.push(
            customer::Entity::find_by_id(r.customer_id)
                .one(&app.db)
                .await
                .unwrap()
                .unwrap()
                .external_userid,
        );
    }
    ids.sort();
    ids
}

fn new_member(userid: &str, name: &str, department: i64, status: i32) -> FixtureMember {
    let mut m = FixtureMember::new(userid, name, department, false);
    m.member.status = status;
    m
}

#[tokio::test]
async fn the_org_sync_finds_new_changed_and_departed_members() {
    let app = TestApp::spawn_with_fake(test_fixture(), |_| {}).await;
    let s = app.services();
    let report = sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    assert_eq!(
        (report.departments, report.members, report.created, report.departed),
        (3, 6, 6, 0)
    );
    let lead1 = member_department::Entity::find_by_id(("lead1".to_owned(), 2))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(lead1.is_leader);
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();

    // In WeCom: a new hire, rep2 left (status 5), rep3 deleted outright, lead2 renamed in the console.
    let fake = app.fake();
    fake.upsert_member(new_member("rep4", "孙七", 2, 1));
    fake.set_member_status("rep2", 5);
    fake.remove_member("rep3");
    let mut lead2 = new_member("lead2", "赵敏经理", 3, 1);
    lead2.member.is_leader_in_dept = vec![1];
    fake.upsert_member(lead2);

    let report = sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    assert_eq!(
        (report.created, report.updated, report.departed),
        (1, 1, 2),
        "{report:?}"
    );
    let rep2 = member::Entity::find_by_id("rep2".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let rep3 = member::Entity::find_by_id("rep3".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!rep2.active && !rep3.active);
    let lead2 = member::Entity::find_by_id("lead2".to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lead2.name, "赵敏经理");
    // rep3's customer went to their leader.
    let c3 = customer::Entity::find()
        .filter(customer::Column::ExternalUserid.eq("wmC3"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c3.owner_userid.as_deref(), Some("lead2"));

    // Nothing new: nothing changes.
    let again = sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    assert_eq!((again.created, again.updated, again.departed), (0, 0, 0), "{again:?}");
}

#[tokio::test]
async fn a_member_only_out_of_sight_is_not_taken_for_departed() {
    let app = TestApp::spawn_with_fake(test_fixture(), |_| {}).await;
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    app.fake().remove_member("rep1");
    // user/get for a member outside the app's visibility answers 60011, not 60111.
    app.fake().inject(Some("user/get"), FaultKind::Errcode(60011), 1);
    let report = sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    assert_eq!(report.departed, 0);
    assert!(
        member::Entity::find_by_id("rep1".to_owned())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .active
    );
}

#[tokio::test]
async fn reconciliation_repairs_what_missed_events_left_behind() {
    let app = TestApp::spawn_with_fake(test_fixture(), |_| {}).await;
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();
    assert_eq!(external_ids(&app, "rep1", true).await, vec!["wmC1", "wmC2"]);

    // Events lost in transit: rep1 lost 张伟, and rep2 gained a customer.
    app.fake().end_relation("wmC1", "rep1");
    app.fake()
        .upsert_contact(contact("wmC9", "周杰", "", &[("rep2", "周先生", "referral")]));
    let report = sync::reconcile(&s).await.unwrap();
    assert_eq!(
        (report.added, report.closed, report.reactivated),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(external_ids(&app, "rep1", false).await, vec!["wmC1"]);
    assert_eq!(external_ids(&app, "rep2", true).await, vec!["wmC2", "wmC9"]);
    let c1 = customer::Entity::find()
        .filter(customer::Column::ExternalUserid.eq("wmC1"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(c1.at_risk);

    let again = sync::reconcile(&s).await.unwrap();
    assert_eq!((again.added, again.closed, again.reactivated), (0, 0, 0));
    // The relation comes back in WeCom: restored.
    app.fake()
        .upsert_contact(contact("wmC1", "张伟", "华为", &[("rep1", "张总", "expo")]));
    assert_eq!(sync::reconcile(&s).await.unwrap().reactivated, 1);
}

#[tokio::test]
async fn an_interrupted_import_resumes_where_it_stopped() {
    let mut fixture = test_fixture();
    for i in 0..250 {
        fixture.external_contacts.push(contact(
            &format!("wmBulk{i:04}"),
            &format!("客户{i}"),
            "",
            &[("rep2", "", "")],
        ));
    }
    let fake = Arc::new(FakeWecom::start_local(fixture).await.unwrap());
    let app = TestApp::spawn_with_fake(test_fixture(), |_| {}).await;
    // Point a service bundle of this app at the bigger fake.
    let mut config = (*app.services().config).clone();
    config.wecom.api_base = fake.url();
    config.wecom.max_attempts = 2;
    let s = wecom_scrm::app::cli_services(config).await.unwrap();

    let fake_for_progress = fake.clone();
    let mut pages = 0;
    let err = sync::sync_customers(&s, &mut |p| {
        if let Progress::Customers { .. } = p {
            pages += 1;
            if pages == 2 {
                // WeCom goes down after the second page.
                fake_for_progress.inject(Some("externalcontact/batch/get_by_user"), FaultKind::Http(503), 2);
            }
        }
    })
    .await
    .unwrap_err();
    let chain = wecom_scrm::telemetry::Chain(&err).to_string();
    assert!(chain.starts_with("WeCom: ") && chain.contains("503"), "{chain}");
    let imported = customer::Entity::find().count(&s.db).await.unwrap();
    assert_eq!(imported, 200, "two pages of 100 committed");
    assert!(sync::customer_sync_interrupted(&s).await.unwrap());

    let events = Mutex::new(Vec::new());
    let report = sync::sync_customers(&s, &mut |p| events.lock().unwrap().push(p))
        .await
        .unwrap();
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|p| matches!(p, Progress::Resumed { .. }))
    );
    assert_eq!(customer::Entity::find().count(&s.db).await.unwrap(), 253);
    assert_eq!(follower::Entity::find().count(&s.db).await.unwrap(), 254);
    assert_eq!(report.relations, 254);
    // 2 pages, 2 refused attempts, then the remaining 1 page: nothing fetched twice.
    assert_eq!(fake.calls("externalcontact/batch/get_by_user"), 2 + 2 + 1);
    assert!(!sync::customer_sync_interrupted(&s).await.unwrap());
}

/// 50 reps in 5 departments, 10,000 customers; every tenth also followed by a second rep.
fn big_fixture() -> Fixture {
    let mut f = Fixture::empty(CORP_ID, AGENT_ID, "test-app-secret", TOKEN, AES_KEY);
    f.departments.push(Department {
        id: 1,
        name: "总部".into(),
        parentid: 0,
        ..Default::default()
    });
    for d in 0..5 {
        f.departments.push(Department {
            id: 10 + d,
            name: format!("销售{d}部"),
            parentid: 1,
            department_leader: vec![format!("rep{:02}", d * 10)],
            ..Default::default()
        });
    }
    for r in 0..50 {
        f.members
            .push(new_member(&format!("rep{r:02}"), &format!("销售{r}"), 10 + r / 10, 1));
    }
    for c in 0..10_000usize {
        let rep = format!("rep{:02}", c % 50);
        let second = format!("rep{:02}", (c + 7) % 50);
        let mut follows = vec![(rep.as_str(), "", "expo")];
        if c % 10 == 0 {
            follows.push((second.as_str(), "", ""));
        }
        f.external_contacts
            .push(contact(&format!("wmBig{c:05}"), &format!("客户{c}"), "", &follows));
    }
    f
}

#[tokio::test]
async fn the_sync_command_imports_ten_thousand_customers_across_fifty_reps_with_progress() {
    init_test_process();
    let fake = FakeWecom::start_local(big_fixture()).await.unwrap();
    let (db, dir) = (TestDb::new(), tempfile::tempdir().unwrap());
    let sync_command = || {
        let mut cmd = command(&db, &dir);
        cmd.env("SCRM_WECOM__API_BASE", fake.url()).arg("sync");
        cmd
    };
    let (code, stdout, stderr) = output_async(sync_command()).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("departments: 6"), "{stdout}");
    assert!(stdout.contains("members: 50 (50 new, 0 changed, 0 left)"), "{stdout}");
    assert!(stdout.contains("members with customer contact: 50"), "{stdout}");
    let progress_lines = stdout.lines().filter(|l| l.starts_with("customers: ")).count();
    assert!(progress_lines >= 100, "a progress line per page: {progress_lines}");
    assert!(
        stdout.contains("customers: 11000 relations · members 50/50"),
        "{stdout}"
    );
    assert!(
        stdout.contains("11000 relations (10000 new customers, 11000 new relations, 0 restored)"),
        "{stdout}"
    );

    let conn = wecom_scrm::db::connect(&wecom_scrm::config::DatabaseConfig {
        url: secrecy::SecretString::from(db.url.clone()),
        schema: db.schema.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(customer::Entity::find().count(&conn).await.unwrap(), 10_000);
    assert_eq!(follower::Entity::find().count(&conn).await.unwrap(), 11_000);
    let owned = customer::Entity::find()
        .filter(customer::Column::OwnerUserid.eq("rep07"))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(owned, 200);

    // Idempotent: a second run adds nothing.
    let (code, stdout, _) = output_async(sync_command()).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("(0 new customers, 0 new relations, 0 restored)"),
        "{stdout}"
    );
    assert_eq!(customer::Entity::find().count(&conn).await.unwrap(), 10_000);
}

#[tokio::test]
async fn search_finds_by_name_remark_company_phone_and_pinyin_within_what_one_may_see() {
    let mut fixture = test_fixture();
    fixture
        .external_contacts
        .push(contact("wmC4", "张伟明", "", &[("rep1", "", "")]));
    let app = TestApp::spawn_with_fake(fixture, |_| {}).await;
    let s = app.services();
    sync::sync_org(&s, &Actor::Sync, &mut |_| {}).await.unwrap();
    sync::sync_customers(&s, &mut |_| {}).await.unwrap();
    let find = |viewer: &'static str, q: &'static str| {
        let db = app.db.clone();
        async move {
            search_customers(&db, viewer, q, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.customer.external_userid)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find("rep1", "张伟").await, vec!["wmC1", "wmC4"], "exact name first");
    assert_eq!(find("rep1", "zhangwei").await, vec!["wmC1", "wmC4"]);
    assert_eq!(
        find("rep1", "zw").await,
        vec!["wmC1", "wmC4"],
        "initials: the whole name ranks above a prefix"
    );
    assert_eq!(find("rep1", "华为").await, vec!["wmC1"]);
    assert_eq!(
        find("rep1", "13800000001").await,
        vec!["wmC1"],
        "a phone number in the remark"
    );
    assert_eq!(find("rep1", "ZHANG WEI").await, Vec::<String>::new());
    assert_eq!(
        find("rep1", "陈静").await,
        Vec::<String>::new(),
        "rep3's customer is not rep1's to see"
    );
    assert_eq!(
        find("lead2", "陈").await,
        vec!["wmC3"],
        "a leader sees the team's customers"
    );
    assert_eq!(
        find("lead1", "陈静").await,
        Vec::<String>::new(),
        "but not another team's"
    );
    assert_eq!(find("boss", "陈静").await, vec!["wmC3"], "sub-departments included");
    assert_eq!(
        find("rep1", "%").await,
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );

    let hits = search_customers(&app.db, "rep2", "刘", 10).await.unwrap();
    assert_eq!(hits[0].remark.as_deref(), Some("刘哥"), "the asking rep's own remark");
    let hits = search_customers(&app.db, "rep1", "liu", 10).await.unwrap();
    assert_eq!(hits[0].remark.as_deref(), Some("刘先生"));
}

#[tokio::test]
async fn the_schedule_syncs_the_org_and_imports_customers_on_a_fresh_database_once() {
    let app = TestApp::spawn_with_fake(test_fixture(), |c| c.jobs.enabled = true).await;
    let imported = wait_for(Duration::from_secs(20), || async {
        let done = job_run::Entity::find()
            .filter(job_run::Column::Job.eq("org_sync"))
            .all(&app.db)
            .await
            .unwrap()
            .iter()
            .any(|r| r.status == RunStatus::Done);
        let n = customer::Entity::find().count(&app.db).await.unwrap();
        (done && n == 3).then_some(n)
    })
    .await;
    assert_eq!(imported, Some(3), "the first start imports every customer");
    assert_eq!(member::Entity::find().count(&app.db).await.unwrap(), 6);
    let restored = wecom_scrm::db::entity::audit::Entity::find()
        .filter(wecom_scrm::db::entity::audit::Column::Action.eq("follower.restored"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(restored, 0, "reconciliation does not run before the first import");

    // A second instance on the same database does not run this period's org sync again.
    let second = TestApp::start_real(app.test_db.share(), app.config.clone()).await;
    // A real wait: the point is that its schedule, given the time to, does not run the job again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = job_run::Entity::find()
        .filter(job_run::Column::Job.eq("org_sync"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, RunStatus::Done);
    assert_eq!(app.fake().calls("department/list"), 1);
    drop(second);
}

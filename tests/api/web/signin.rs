//! Signing in through WeCom: the authorize redirect, the code exchange, the state bound to the
//! browser, the session cookie, and what happens when anything is off.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait};
use wecom_scrm::wecom::api::codes;
use wecom_scrm::wecom::fake::{FaultKind, Signer};

use super::{Browser, signed_in, spawn_web};

fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(url: &str, name: &str) -> String {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_page_without_a_session_signs_in_through_wecom_and_comes_back() {
    let app = spawn_web(|_| {}).await;
    app.fake().sign_in_as(Some(Signer::Member("rep1".into())));
    let browser = Browser::new();

    // The redirect to WeCom, exactly as WeCom documents it.
    let first = browser
        .get(&app.url("/web/customers/wmC1?entry=single_chat_tools"))
        .await;
    assert_eq!(first.status(), StatusCode::FOUND);
    let authorize = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/connect/oauth2/authorize?", app.fake().url())),
        "{authorize}"
    );
    assert!(authorize.ends_with("#wechat_redirect"));
    let authorize = authorize.trim_end_matches("#wechat_redirect");
    assert_eq!(param(authorize, "appid"), app.config.wecom.corp_id);
    assert_eq!(param(authorize, "redirect_uri"), app.url("/web/oauth/callback"));
    assert_eq!(param(authorize, "response_type"), "code");
    assert_eq!(param(authorize, "scope"), "snsapi_base");
    assert_eq!(param(authorize, "agentid"), app.config.wecom.agent_id.to_string());
    let state = param(authorize, "state");
    assert!(
        state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{state}"
    );

    // WeCom comes back with a code; the service signs in and returns to the page.
    let (page, visited) = browser.open(authorize).await;
    assert_eq!(page.status(), StatusCode::OK, "{visited:?}");
    assert_eq!(
        visited.last().unwrap(),
        &app.url("/web/customers/wmC1?entry=single_chat_tools")
    );
    assert!(page.text().await.unwrap().contains("张伟"));

    let session = browser
        .set_cookies
        .lock()
        .unwrap()
        .iter()
        .find(|c| c.starts_with("scrm_session="))
        .cloned()
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && session.contains("Path=/web"));
    assert!(!session.contains("Secure"), "the public URL is plain http: {session}");
    assert_eq!(app.fake().calls("auth/getuserinfo"), 1);
}

#[tokio::test]
async fn a_code_works_once_and_a_forged_or_replayed_state_is_refused() {
    let app = spawn_web(|_| {}).await;
    app.fake().sign_in_as(Some(Signer::Member("rep1".into())));
    let browser = Browser::new();
    let (_, visited) = browser.open(&app.url("/web/sidebar")).await;
    let callback = visited
        .iter()
        .find(|u| u.contains("/web/oauth/callback"))
        .unwrap()
        .clone();

    // The same callback again: WeCom refuses the used code.
    let again = browser.get(&callback).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.text().await.unwrap().contains("登录码已失效"));

    // A fresh code with the used state: the state is accepted once.
    let state = param(&callback, "state");
    let code = app.fake().issue_code(Signer::Member("rep1".into()));
    let replayed = browser
        .get(&app.url(&format!("/web/oauth/callback?code={code}&state={state}")))
        .await;
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);

    // A state we did not sign, or one changed by a character.
    let exchanges = app.fake().calls("auth/getuserinfo");
    let code = app.fake().issue_code(Signer::Member("rep1".into()));
    let mut forged = state.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    for bad in [forged.as_str(), "abc", ""] {
        let answer = browser
            .get(&app.url(&format!("/web/oauth/callback?code={code}&state={bad}")))
            .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "state {bad:?}");
    }
    assert_eq!(
        app.fake().calls("auth/getuserinfo"),
        exchanges,
        "forged states never reach WeCom"
    );
}

#[tokio::test]
async fn a_sign_in_finishes_only_in_the_browser_that_started_it() {
    let app = spawn_web(|_| {}).await;
    app.fake().sign_in_as(Some(Signer::Member("rep1".into())));
    let started = Browser::new();
    let first = started.get(&app.url("/web/sidebar")).await;
    let authorize = first.headers()["location"]
        .to_str()
        .unwrap()
        .replace("#wechat_redirect", "");
    let from_wecom = started.get(&authorize).await;
    let callback = from_wecom.headers()["location"].to_str().unwrap().to_owned();

    // Someone else's browser lands on the callback (a login-CSRF attempt).
    let other = Browser::new();
    let answer = other.get(&callback).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(other.cookie("scrm_session").is_none());
}

#[tokio::test]
async fn outsiders_members_who_left_and_expired_sessions() {
    let app = spawn_web(|_| {}).await;

    // A WeChat user outside the corp: WeCom answers an openid.
    app.fake().sign_in_as(Some(Signer::Outsider));
    let (page, _) = Browser::new().open(&app.url("/web/sidebar")).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains("只有本企业在职的成员"));

    // A signed-in rep leaves: the session stops working at once.
    let browser = signed_in(&app, "rep2").await;
    let card = browser.get(&app.url("/web/api/customers/wmC2")).await;
    assert_eq!(card.status(), StatusCode::OK);
    app.db
        .execute_unprepared("UPDATE members SET active = false, status = 5 WHERE userid = 'rep2'")
        .await
        .unwrap();
    assert_eq!(
        browser.get(&app.url("/web/api/customers/wmC2")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser.get(&app.url("/web/customers/wmC2")).await.status(),
        StatusCode::FORBIDDEN
    );

    // An expired session: pages start the sign-in again, the API answers 401.
    let key = wecom_scrm::db::entity::kv_state::Entity::find_by_id("web.session_key")
        .one(&app.db)
        .await
        .unwrap()
        .expect("a generated key is kept in the database");
    let sealer = wecom_scrm::web::seal::Sealer::new(key.value.as_bytes());
    let expired = wecom_scrm::web::session::Session::new("rep1".into(), crate::helpers::now_secs() - 7200, 3600);
    let browser = Browser::new();
    browser.set_cookie("scrm_session", &expired.seal(&sealer));
    let page = browser.get(&app.url("/web/customers/wmC1")).await;
    assert_eq!(page.status(), StatusCode::FOUND);
    assert!(
        page.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/connect/oauth2/authorize")
    );
    let api = browser.get(&app.url("/web/api/customers/wmC1")).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    // The same session, still valid, works: the key is the one the app signs with.
    let valid = wecom_scrm::web::session::Session::new("rep1".into(), crate::helpers::now_secs(), 3600);
    browser.set_cookie("scrm_session", &valid.seal(&sealer));
    assert_eq!(
        browser.get(&app.url("/web/api/customers/wmC1")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn wecom_down_during_sign_in_is_a_page_that_says_so() {
    let app = spawn_web(|_| {}).await;
    app.fake().sign_in_as(Some(Signer::Member("rep1".into())));
    app.fake().inject(Some("auth/getuserinfo"), FaultKind::Http(502), 20);
    let (page, _) = Browser::new().open(&app.url("/web/sidebar")).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.unwrap().contains("企业微信"));

    app.fake()
        .inject(Some("auth/getuserinfo"), FaultKind::Errcode(codes::SYSTEM_BUSY), 20);
    let (page, _) = Browser::new().open(&app.url("/web/sidebar?lang=en")).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.unwrap().contains("WeCom did not answer"));
}

#[tokio::test]
async fn the_web_root_leads_to_the_sidebar_and_unknown_pages_say_so() {
    let app = spawn_web(|_| {}).await;
    let root = Browser::new().get(&app.url("/web")).await;
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()["location"].to_str().unwrap(), app.url("/web/sidebar"));
    let missing = Browser::new().get(&app.url("/web/nothing/here")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("没有这个页面"));
}

#[tokio::test]
async fn pages_say_so_when_the_public_url_is_not_set() {
    let app = crate::helpers::spawn_imported(|_| {}).await;
    let page = Browser::new().get(&app.url("/web/sidebar")).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.unwrap().contains("web.public_url"));
}

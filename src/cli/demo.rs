//! `wecom-scrm demo` (the service beside a fake WeCom, on the embedded default) and
//! `wecom-scrm fake-wecom` (the fake alone).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;
use tokio::sync::broadcast;

use super::CliError;
use crate::app::{App, shutdown_signal};
use crate::config::Config;
use crate::wecom::fake::{Delivery, FakeWecom, Fixture};

/// Where the demo keeps its data unless told otherwise: apart from a real deployment's database.
pub const DEMO_DATABASE: &str = "sqlite://data/demo.db?mode=rwc";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A fixture of members, departments and customers (default: the bundled demo team).
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// The service's address (default: server.addr, 127.0.0.1:8080).
    #[arg(long)]
    pub addr: Option<String>,
    /// The demo's database (default: a SQLite file, data/demo.db).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct FakeWecomArgs {
    /// The fixture to serve (default: the bundled demo team).
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub addr: SocketAddr,
}

fn load_fixture(path: Option<&PathBuf>) -> Result<Fixture, CliError> {
    match path {
        Some(path) => Fixture::load(path).map_err(|e| CliError::Failed(e.to_string())),
        None => Ok(Fixture::demo()),
    }
}

pub async fn run_demo(mut config: Config, args: DemoArgs) -> Result<(), CliError> {
    let fixture = load_fixture(args.fixture.as_ref())?;
    let fake = FakeWecom::start_local(fixture.clone())
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;

    config.wecom.corp_id = fixture.corp_id.clone();
    config.wecom.agent_id = fixture.agent_id;
    config.wecom.secret = SecretString::from(fixture.secret.clone());
    config.wecom.token = SecretString::from(fixture.token.clone());
    config.wecom.encoding_aes_key = SecretString::from(fixture.encoding_aes_key.clone());
    config.wecom.api_base = fake.url();
    config.database.url = SecretString::from(args.database.unwrap_or_else(|| DEMO_DATABASE.to_owned()));
    config.redis.url = SecretString::from("");
    if let Some(addr) = args.addr {
        config.server.addr = addr;
    }
    // The web pages sign in through the fake and load its stand-in for WeCom's JS-SDK.
    config.wecom.oauth_base = fake.url();
    config.web.jssdk_url = fake.jssdk_url();
    if config.web.public_url.trim().is_empty() {
        config.web.public_url = format!("http://{}", config.server.addr.replace("0.0.0.0", "127.0.0.1"));
    }
    let public_url = config.web.public_url.trim_end_matches('/').to_owned();
    config.channels.extend(fixture.channels.iter().cloned());
    let database = crate::config::redact_url(secrecy::ExposeSecret::expose_secret(&config.database.url));

    let app = App::build(config).await?;
    let service = format!("http://{}", app.local_addr());
    print_banner(&fixture, &service, &fake, &public_url, &database);
    let printer = tokio::spawn(print_deliveries(fixture.clone(), fake.subscribe()));
    let result = app.run(shutdown_signal()).await;
    printer.abort();
    fake.stop().await;
    result.map_err(CliError::from)
}

fn print_banner(fixture: &Fixture, service: &str, fake: &FakeWecom, public_url: &str, database: &str) {
    let team: Vec<String> = fixture
        .members
        .iter()
        .map(|m| {
            let leader = if m.member.is_leader_in_dept.contains(&1) {
                "·主管"
            } else {
                ""
            };
            format!("{} ({}){leader}", m.member.name, m.member.userid)
        })
        .collect();
    let rep = fixture
        .members
        .iter()
        .find(|m| m.customer_contact && !m.member.is_leader_in_dept.contains(&1))
        .map_or("zhangsan", |m| m.member.userid.as_str());
    let prospect = fixture
        .external_contacts
        .iter()
        .find(|c| c.follow_user.is_empty())
        .map_or("wmDemoProspect01", |c| c.external_contact.external_userid.as_str());
    let customer = fixture
        .external_contacts
        .iter()
        .find(|c| c.follow_user.iter().any(|f| f.userid == rep))
        .map(|c| {
            (
                c.external_contact.external_userid.as_str(),
                c.external_contact.name.as_str(),
            )
        });
    let rep_name = fixture
        .members
        .iter()
        .find(|m| m.member.userid == rep)
        .map_or(rep, |m| m.member.name.as_str());
    let url_flag = if service == "http://127.0.0.1:8080" {
        String::new()
    } else {
        format!(" --url {service}/wecom/callback")
    };
    let me = invocation();
    println!("wecom-scrm demo is running (Ctrl-C to stop)");
    println!("  service      {service}   (WeCom callbacks: {service}/wecom/callback)");
    println!("  fake WeCom   {}", fake.url());
    println!("  database     {database}, in-process cache");
    println!("  team         {}", team.join(", "));
    println!();
    println!("Play WeCom from another terminal:");
    println!("  {me} simulate --demo{url_flag} text --from {rep} \"帮助\"");
    println!(
        "  {me} simulate --demo{url_flag} add-contact --user {rep} --external {prospect} --state expo2026_booth3 --welcome-code WELCOME1"
    );
    println!("  SCRM_DATABASE__URL='{database}' {me} inbox list");
    println!();
    if let Some((external_userid, name)) = customer {
        println!("Open the sidebar in a browser, as {rep_name} in the chat with {name}:");
        println!(
            "  {}",
            fake.open_url(rep, Some(external_userid), &format!("{public_url}/web/sidebar"))
        );
        println!();
    }
    println!("Messages the service pushes to reps and managers appear below.");
}

async fn print_deliveries(fixture: Fixture, mut feed: broadcast::Receiver<Delivery>) {
    loop {
        match feed.recv().await {
            Ok(delivery) => println!("{}", describe_delivery(&fixture, &delivery)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                println!("… {missed} more messages (console fell behind)")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// How the console shows a pushed message: who got it, what kind, and the text indented below.
pub fn describe_delivery(fixture: &Fixture, delivery: &Delivery) -> String {
    let name_of = |userid: &str| {
        fixture
            .members
            .iter()
            .find(|m| m.member.userid == userid)
            .map_or_else(|| userid.to_owned(), |m| format!("{} ({userid})", m.member.name))
    };
    let (heading, text) = match delivery {
        Delivery::Message(message) => {
            let to: Vec<String> = message.to_users.iter().map(|u| name_of(u)).collect();
            let kind = match &message.body {
                crate::wecom::api::types::MessageBody::Text { .. } => "text",
                crate::wecom::api::types::MessageBody::Markdown { .. } => "markdown",
                crate::wecom::api::types::MessageBody::Textcard { .. } => "card",
                crate::wecom::api::types::MessageBody::TemplateCard { .. } => "buttons",
            };
            let mut text = message.body.display_text();
            if let crate::wecom::api::types::MessageBody::TemplateCard { template_card } = &message.body {
                let keys: Vec<&str> = template_card.button_list.iter().map(|b| b.key.as_str()).collect();
                text.push_str(&format!("\n(task {} · keys {})", template_card.task_id, keys.join(" ")));
            }
            (format!("📨 → {} [{kind}]", to.join(", ")), text)
        }
        Delivery::Welcome(welcome) => (
            format!("👋 welcome message to a new customer (code {})", welcome.welcome_code),
            welcome.text.clone(),
        ),
    };
    let body: Vec<String> = text.lines().map(|line| format!("   {}", plain_links(line))).collect();
    format!("{heading}\n{}", body.join("\n"))
}

/// A link in a text message (`<a href="URL">words</a>`) as a console shows it: `words: URL`.
fn plain_links(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("<a href=\"") {
        let after = &rest[start + 9..];
        let Some((url, tail)) = after.split_once("\">") else {
            break;
        };
        let Some((words, tail)) = tail.split_once("</a>") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&format!("{words}: {url}"));
        rest = tail;
    }
    out.push_str(rest);
    out
}

pub async fn run_fake_wecom(args: FakeWecomArgs) -> Result<(), CliError> {
    let fixture = load_fixture(args.fixture.as_ref())?;
    let fake = FakeWecom::start(fixture.clone(), args.addr)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!("fake WeCom listening on {} (Ctrl-C to stop)", fake.url());
    println!("Point the service at it with:");
    println!("  SCRM_WECOM__API_BASE={}", fake.url());
    println!("  SCRM_WECOM__CORP_ID={}", fixture.corp_id);
    println!("  SCRM_WECOM__AGENT_ID={}", fixture.agent_id);
    println!("  SCRM_WECOM__SECRET={}", fixture.secret);
    println!("  SCRM_WECOM__TOKEN={}", fixture.token);
    println!("  SCRM_WECOM__ENCODING_AES_KEY={}", fixture.encoding_aes_key);
    println!("Inspect: GET {0}/_fake/messages, {0}/_fake/calls", fake.url());
    let printer = tokio::spawn(print_deliveries(fixture, fake.subscribe()));
    shutdown_signal().await;
    printer.abort();
    fake.stop().await;
    Ok(())
}

/// How the user should call this program again: through cargo when it runs from a build directory.
fn invocation() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let in_target = exe.components().any(|c| c.as_os_str() == "target");
    let release = exe.components().any(|c| c.as_os_str() == "release");
    match (in_target, release) {
        (true, true) => "cargo run --release --".into(),
        (true, false) => "cargo run --".into(),
        _ => "wecom-scrm".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wecom::api::types::MessageBody;
    use crate::wecom::fake::SentMessage;

    #[test]
    fn links_read_as_words_and_address() {
        assert_eq!(
            plain_links("见 <a href=\"http://x/web/customers/wm1\">打开客户资料</a> 。"),
            "见 打开客户资料: http://x/web/customers/wm1 。"
        );
        assert_eq!(plain_links("no link <a href=\"broken"), "no link <a href=\"broken");
    }

    #[test]
    fn deliveries_read_well_on_the_console() {
        let fixture = Fixture::demo();
        let message = Delivery::Message(SentMessage {
            msgid: "m1".into(),
            to_users: vec!["zhangsan".into()],
            body: MessageBody::text("⏰ 提醒：15:00 回电话\n张伟（华为）"),
            duplicate_check: false,
            duplicate_check_interval: None,
            at: 0,
        });
        assert_eq!(
            describe_delivery(&fixture, &message),
            "📨 → 张三 (zhangsan) [text]\n   ⏰ 提醒：15:00 回电话\n   张伟（华为）"
        );
    }
}

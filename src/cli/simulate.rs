//! `wecom-scrm simulate …`: plays WeCom against a running service — builds the callback, encrypts
//! and signs it with the configured credentials (or the demo's), POSTs it, and prints the HTTP
//! status and any passive reply.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use secrecy::SecretString;

use super::CliError;
use crate::config::{Config, Needs};
use crate::wecom::compose::{self, ExternalContactExtras};
use crate::wecom::crypto::WecomCrypto;
use crate::wecom::fake::{Fixture, deliver_callback};
use crate::wecom::xml::parse_fields;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The service's callback URL (default: http://<server.addr>/wecom/callback).
    #[arg(long)]
    pub url: Option<String>,
    /// Use the credentials of the bundled demo (for a running `wecom-scrm demo`).
    #[arg(long, conflicts_with = "fixture")]
    pub demo: bool,
    /// Use the credentials of this fixture file.
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// Send the same callback this many times, as WeCom does when it retries.
    #[arg(long, default_value_t = 1)]
    pub times: u32,
    #[command(subcommand)]
    pub kind: SimulateKind,
}

#[derive(Debug, Subcommand)]
pub enum SimulateKind {
    /// A member's text message to the app (a chat command).
    Text {
        #[arg(long)]
        from: String,
        content: String,
        /// WeCom's MsgId (default: a fresh one).
        #[arg(long)]
        msg_id: Option<u64>,
    },
    /// A customer added a member (add_external_contact).
    AddContact {
        #[arg(long)]
        user: String,
        #[arg(long)]
        external: String,
        /// The 「联系我」 QR code's state: the lead source.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        welcome_code: Option<String>,
    },
    /// A customer added a member who has not confirmed yet (add_half_external_contact).
    AddHalfContact {
        #[arg(long)]
        user: String,
        #[arg(long)]
        external: String,
        #[arg(long)]
        state: Option<String>,
    },
    /// A member edited a customer's remark or tags (edit_external_contact).
    EditContact {
        #[arg(long)]
        user: String,
        #[arg(long)]
        external: String,
    },
    /// The member deleted the customer (del_external_contact).
    DelContact {
        #[arg(long)]
        user: String,
        #[arg(long)]
        external: String,
    },
    /// The customer deleted the member (del_follow_user, 客户删人).
    DelFollowUser {
        #[arg(long)]
        user: String,
        #[arg(long)]
        external: String,
    },
    /// A customer transfer failed (transfer_fail); --user is the takeover member.
    TransferFail {
        #[arg(long)]
        user: String,
        #[arg(long)]
        external: String,
        #[arg(long, default_value = "customer_refused")]
        reason: String,
    },
    /// A member joined (change_contact create_user).
    UserCreated {
        #[arg(long)]
        user: String,
    },
    /// A member changed (change_contact update_user).
    UserUpdated {
        #[arg(long)]
        user: String,
    },
    /// A member left the company (change_contact delete_user).
    UserDeleted {
        #[arg(long)]
        user: String,
    },
    /// A member tapped a button of a card the service sent (template_card_event). Each run is a
    /// new click (a fresh response code); `--times` repeats it as WeCom's retries do.
    CardClick {
        #[arg(long)]
        from: String,
        /// The card's task id (the demo's console shows it under each card).
        #[arg(long)]
        task: String,
        /// The button's key, e.g. done:12, hour:12, tomorrow:12.
        #[arg(long)]
        key: String,
        /// The reminder chosen in the card's drop-down list (its id), on a card listing several.
        #[arg(long)]
        option: Option<String>,
        /// WeCom's ResponseCode (default: a fresh one).
        #[arg(long)]
        response_code: Option<String>,
    },
    /// A member opened the app (enter_agent) or clicked a menu item (click).
    Event {
        #[arg(long)]
        from: String,
        #[arg(long, default_value = "enter_agent")]
        event: String,
        #[arg(long, default_value = "")]
        key: String,
    },
}

struct Credentials {
    crypto: WecomCrypto,
    corp_id: String,
    agent_id: i64,
}

fn credentials(config: &Config, args: &SimulateArgs) -> Result<Credentials, CliError> {
    let from_fixture = |fixture: Fixture| -> Result<Credentials, CliError> {
        let crypto = WecomCrypto::new(
            SecretString::from(fixture.token.clone()),
            &fixture.encoding_aes_key,
            fixture.corp_id.clone(),
        )
        .map_err(|e| CliError::Failed(format!("the fixture's encoding_aes_key {e}")))?;
        Ok(Credentials {
            crypto,
            corp_id: fixture.corp_id,
            agent_id: fixture.agent_id,
        })
    };
    if args.demo {
        return from_fixture(Fixture::demo());
    }
    if let Some(path) = &args.fixture {
        return from_fixture(Fixture::load(path).map_err(|e| CliError::Failed(e.to_string()))?);
    }
    config.validate(Needs::Callbacks)?;
    Ok(Credentials {
        crypto: crate::wecom::crypto::WecomCrypto::from_settings(&config.wecom)?,
        corp_id: config.wecom.corp_id.trim().to_owned(),
        agent_id: config.wecom.agent_id,
    })
}

fn default_url(config: &Config) -> String {
    let addr = config
        .server
        .addr
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{addr}/wecom/callback")
}

fn inner_xml(kind: &SimulateKind, corp_id: &str, agent_id: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let contact = |change: &str, user: &str, external: &str, extras: ExternalContactExtras<'_>| {
        compose::external_contact_event(corp_id, change, user, external, &extras, now)
    };
    match kind {
        SimulateKind::Text { from, content, msg_id } => {
            let msg_id = msg_id.unwrap_or_else(|| (rand::random::<u64>() >> 2) | 1 << 60);
            compose::text_message(corp_id, from, content, msg_id, agent_id, now)
        }
        SimulateKind::AddContact {
            user,
            external,
            state,
            welcome_code,
        } => contact(
            "add_external_contact",
            user,
            external,
            ExternalContactExtras {
                state: state.as_deref(),
                welcome_code: welcome_code.as_deref(),
                ..Default::default()
            },
        ),
        SimulateKind::AddHalfContact { user, external, state } => contact(
            "add_half_external_contact",
            user,
            external,
            ExternalContactExtras {
                state: state.as_deref(),
                ..Default::default()
            },
        ),
        SimulateKind::EditContact { user, external } => {
            contact("edit_external_contact", user, external, Default::default())
        }
        SimulateKind::DelContact { user, external } => {
            contact("del_external_contact", user, external, Default::default())
        }
        SimulateKind::DelFollowUser { user, external } => {
            contact("del_follow_user", user, external, Default::default())
        }
        SimulateKind::TransferFail { user, external, reason } => contact(
            "transfer_fail",
            user,
            external,
            ExternalContactExtras {
                fail_reason: Some(reason),
                ..Default::default()
            },
        ),
        SimulateKind::UserCreated { user } => compose::contact_event(corp_id, "create_user", user, now),
        SimulateKind::UserUpdated { user } => compose::contact_event(corp_id, "update_user", user, now),
        SimulateKind::UserDeleted { user } => compose::contact_event(corp_id, "delete_user", user, now),
        SimulateKind::Event { from, event, key } => compose::app_event(corp_id, from, event, key, agent_id, now),
        SimulateKind::CardClick {
            from,
            task,
            key,
            option,
            response_code,
        } => {
            let code = response_code
                .clone()
                .unwrap_or_else(|| format!("sim-{:016x}", rand::random::<u64>()));
            let click = compose::CardClickEvent {
                from_user: from,
                task_id: task,
                event_key: key,
                response_code: &code,
                selected: option.as_deref().map(|o| (crate::bot::cards::QUESTION, o)),
            };
            compose::card_click(corp_id, &click, agent_id, now)
        }
    }
}

pub async fn run(config: &Config, args: SimulateArgs) -> Result<(), CliError> {
    let credentials = credentials(config, &args)?;
    let url = args.url.clone().unwrap_or_else(|| default_url(config));
    let inner = inner_xml(&args.kind, &credentials.corp_id, credentials.agent_id);
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut all_ok = true;
    for _ in 0..args.times.max(1) {
        let answer = deliver_callback(
            &http,
            &credentials.crypto,
            &credentials.agent_id.to_string(),
            &url,
            &inner,
        )
        .await
        .map_err(|e| CliError::Failed(format!("{e} (is the service running at {url}?)")))?;
        println!("HTTP {}", answer.status);
        match answer.reply {
            Some(reply) if crate::wecom::fake::update_button_text(&reply).is_some() => {
                let text = crate::wecom::fake::update_button_text(&reply).unwrap_or_default();
                println!("card: {text}");
            }
            Some(reply) => {
                let fields = parse_fields(&reply).ok();
                let content = fields.as_ref().and_then(|f| f.get("Content")).unwrap_or(&reply);
                println!("reply: {content}");
            }
            None if answer.status != 200 && !answer.body.is_empty() => println!("{}", answer.body),
            None => {}
        }
        all_ok &= (200..300).contains(&answer.status);
    }
    if all_ok {
        Ok(())
    } else {
        Err(CliError::Failed("the service did not accept the callback".into()))
    }
}

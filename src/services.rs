//! The long-lived parts that event handlers, chat commands and jobs work with, built once — by
//! [`Services::build`], for `serve` and the command line alike — and shared.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::inbox::answers::AwaitedAnswers;
use crate::metrics::Metrics;
use crate::notify::{DeliveryHooks, MemberWindows, Notifier};
use crate::wecom::api::WecomClient;

#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub cache: Cache,
    pub wecom: WecomClient,
    pub notifier: Notifier,
    /// Chat answers awaited by callback requests in this process.
    pub answers: Arc<AwaitedAnswers>,
    pub metrics: Arc<Metrics>,
    /// The time deliveries run on (the system's, except in simulations).
    pub clock: Clock,
}

/// What [`Services::build`] needs besides the configuration and storage.
pub struct Parts {
    /// This process's name in leases.
    pub instance: String,
    /// What outbox messages carry (the reminder pushes), settled with them.
    pub hooks: Arc<dyn DeliveryHooks>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// A WeCom client to reuse (several instances simulated in one process); a new one otherwise.
    pub wecom: Option<WecomClient>,
}

impl Services {
    pub fn build(config: Arc<Config>, db: DatabaseConnection, cache: Cache, parts: Parts) -> Self {
        let wecom = parts
            .wecom
            .unwrap_or_else(|| WecomClient::with_clock(&config.wecom, cache.clone(), parts.clock.clone()));
        let windows = MemberWindows {
            per_minute: config.wecom.messages_per_user_per_minute,
            per_hour: config.wecom.messages_per_user_per_hour,
        };
        let notifier = Notifier::new(
            db.clone(),
            wecom.clone(),
            config.outbox.clone(),
            windows,
            parts.instance,
            parts.metrics.clone(),
            parts.hooks,
            parts.clock.clone(),
        );
        let answers = Arc::new(AwaitedAnswers::from_config(&config));
        Self {
            config,
            db,
            cache,
            wecom,
            notifier,
            answers,
            metrics: parts.metrics,
            clock: parts.clock,
        }
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.config.org.tz()
    }

    /// How long a chat session lasts without activity.
    pub fn session_idle(config: &Config) -> Duration {
        Duration::from_secs(config.bot.session_idle_secs.max(60))
    }
}

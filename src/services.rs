//! The long-lived parts that event handlers, chat commands and jobs work with, built once at
//! start-up and shared.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::cache::Cache;
use crate::config::Config;
use crate::inbox::answers::AwaitedAnswers;
use crate::metrics::Metrics;
use crate::notify::Notifier;
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
}

impl Services {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.config.org.tz()
    }
}

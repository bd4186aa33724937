//! What the service does with each WeCom callback: the inbox worker hands every stored callback to
//! [`EventHandler`], which dispatches by kind. Handlers are idempotent (a replay changes nothing)
//! and tolerant of order (an edit or deletion of a customer never seen is recorded, not refused).

mod answer;
mod card;
mod contacts;
mod staff;
mod text;
pub mod texts;

use std::sync::Arc;

use crate::bot::Bot;
use crate::db::entity::inbox;
use crate::inbox::{HandlerError, HandlerFuture, InboxHandler, Outcome, ParsedRow, RunFuture};
use crate::services::Services;
use crate::wecom::api::WecomError;
use crate::wecom::callback::{Callback, CallbackKind};

pub use self::staff::{apply_departure, sync_member};

/// Handles stored callbacks.
#[derive(Clone)]
pub struct EventHandler {
    services: Arc<Services>,
    bot: Arc<Bot>,
}

impl EventHandler {
    pub fn new(services: Arc<Services>) -> Self {
        let bot = Arc::new(Bot::new(services.clone()));
        Self { services, bot }
    }
}

impl InboxHandler for EventHandler {
    fn handle<'a>(&'a self, row: &'a inbox::Model, callback: &'a Callback) -> HandlerFuture<'a> {
        Box::pin(async move {
            let s = &self.services;
            match &callback.kind {
                CallbackKind::ExternalContact(event) => contacts::handle(s, row, event).await,
                CallbackKind::Contact(event) => staff::handle(s, row, event).await,
                CallbackKind::Text { content, .. } => text::handle(s, &self.bot, row, content).await,
                CallbackKind::CardClick(click) => card::handle(s, &self.bot, row, click).await,
                CallbackKind::EnterAgent { .. } | CallbackKind::Click { .. } | CallbackKind::View { .. } => {
                    Ok(Outcome::Ignored(format!("nothing to do for {}", row.kind)))
                }
                CallbackKind::Unknown { .. } => Ok(Outcome::Ignored(format!("unknown callback kind {}", row.kind))),
            }
        })
    }

    /// A member's run of chat messages is answered in one transaction.
    fn run_length(&self, rows: &[ParsedRow]) -> usize {
        text::run_length(rows)
    }

    fn handle_run<'a>(&'a self, rows: &'a [ParsedRow]) -> RunFuture<'a> {
        Box::pin(text::handle_run(&self.services, &self.bot, rows))
    }
}

/// WeCom failures are retried by the inbox (a wrong configuration may be fixed meanwhile); a spent
/// call budget is waited out without counting as an attempt.
fn wecom_error(e: WecomError) -> HandlerError {
    HandlerError::Wecom(e)
}

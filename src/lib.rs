//! wecom-scrm: a sales CRM used from inside WeCom (企业微信) chats.
//!
//! Module map: [`wecom`] speaks the WeCom protocol, [`inbox`] stores and processes callbacks,
//! [`cache`] and [`db`] are the storage layers, [`http`] the routes, [`app`] start-up and shutdown,
//! [`cli`] the command line.

pub mod app;
pub mod bot;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crm;
pub mod db;
pub mod events;
pub mod http;
pub mod inbox;
pub mod jobs;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod services;
pub mod sync;
pub mod telemetry;
pub mod texts;
pub mod tokens;
pub mod web;
pub mod wecom;

/// Installs ring as the process-wide rustls crypto provider. HTTPS clients need one, and building
/// with ring (already used by the database driver) avoids compiling a second crypto library.
/// Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

//! wecom-scrm: a sales CRM used from inside WeCom (企业微信) chats.
//!
//! Module map: [`wecom`] speaks the WeCom protocol, [`inbox`] stores and processes callbacks,
//! [`cache`] and [`db`] are the storage layers, [`http`] the routes, [`app`] start-up and shutdown,
//! [`cli`] the command line.

pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod inbox;
pub mod telemetry;
pub mod wecom;

//! The CRM domain: the org, customers and the members who follow them, lead channels, the audit
//! log, search, and synchronisation with WeCom. Functions here take a database connection (or
//! transaction) and plain values; they never see HTTP or chat.

pub mod activity;
pub mod assign;
pub mod audit;
pub mod card;
pub mod channels;
pub mod customers;
pub mod dashboard;
pub mod deals;
pub mod export;
pub mod figures;
pub mod followups;
pub mod forecast;
pub mod listing;
pub mod members;
pub mod money;
pub mod pipeline;
pub mod plans;
pub mod pool;
pub mod reminders;
pub mod risk;
pub mod score;
pub mod search;
pub mod stages;
pub mod team;
pub mod transfer;
pub mod undo;

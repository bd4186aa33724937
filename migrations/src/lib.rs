//! Versioned schema for wecom-scrm. Every migration is written with SeaQuery's schema builder so the
//! same file serves SQLite and PostgreSQL. Tables are designed completely up front because SQLite
//! cannot add constraints to an existing table.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_inbox;
mod m20261122_000002_crm;
mod m20261122_000003_inbox_reply;
mod m20261122_000004_pushes;
mod m20261122_000005_summary;
mod m20261202_000006_api_tokens;
mod m20261202_000007_customer_import;
mod m20261204_000008_delivery;
mod m20261204_000009_card_actions;
mod m20261205_000010_deals;
mod m20261206_000011_follow_up_days;
mod m20261206_000012_inbox_lanes;
mod m20261207_000013_outbox_digest;
mod m20261207_000014_inbox_open_rows;
mod m20261208_000015_lead_pool;
mod m20261209_000016_inbox_lane_runs;
mod m20261210_000017_inbox_status_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_inbox::Migration),
            Box::new(m20261122_000002_crm::Migration),
            Box::new(m20261122_000003_inbox_reply::Migration),
            Box::new(m20261122_000004_pushes::Migration),
            Box::new(m20261122_000005_summary::Migration),
            Box::new(m20261202_000006_api_tokens::Migration),
            Box::new(m20261202_000007_customer_import::Migration),
            Box::new(m20261204_000008_delivery::Migration),
            Box::new(m20261204_000009_card_actions::Migration),
            Box::new(m20261205_000010_deals::Migration),
            Box::new(m20261206_000011_follow_up_days::Migration),
            Box::new(m20261206_000012_inbox_lanes::Migration),
            Box::new(m20261207_000013_outbox_digest::Migration),
            Box::new(m20261207_000014_inbox_open_rows::Migration),
            Box::new(m20261208_000015_lead_pool::Migration),
            Box::new(m20261209_000016_inbox_lane_runs::Migration),
            Box::new(m20261210_000017_inbox_status_indexes::Migration),
        ]
    }
}

//! All integration tests in one binary (one link on a 2-core machine). Each test starts the real
//! app on a random port with its own database and cache prefix; the backend is chosen by
//! `SCRM_TEST_DATABASE_URL` / `SCRM_TEST_REDIS_URL`, never by `cfg`.

pub mod admin_api;
mod cache;
mod callback;
mod cards;
mod chat;
pub mod cli;
mod customers;
mod daily;
mod deals;
mod delivery;
mod delivery_sim;
mod demo;
mod health;
mod held_back;
mod helpers;
mod inbox;
mod lanes;
mod pool;
mod pushes;
mod runs;
mod sync;
pub mod transfer;
mod web;
mod wecom_api;

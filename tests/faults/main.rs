//! Fault tests: the service against a Redis, a PostgreSQL or a WeCom that goes away and comes back,
//! a SIGTERM under load, and hostile input. Servers that a test stops are its own throwaway ones
//! (`servers`), never the shared ones; the rest of the set-up follows `SCRM_TEST_DATABASE_URL` /
//! `SCRM_TEST_REDIS_URL` like the API tests.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod hostile;
mod postgres_down;
mod redis_down;
mod servers;
mod shutdown;
mod wecom_down;

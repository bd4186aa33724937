//! Fault tests: the service against a WeCom that goes away and comes back, a SIGTERM under load,
//! and hostile input — and, with `--features server-tests`, a Redis or a PostgreSQL that goes away
//! and comes back. Servers that a test stops are its own throwaway ones (`servers`), never the
//! shared ones, and need `redis-server` and PostgreSQL's `initdb` / `pg_ctl` installed: that is why
//! they are an opt-in. The rest of the set-up follows `SCRM_TEST_DATABASE_URL` /
//! `SCRM_TEST_REDIS_URL` like the API tests.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod hostile;
#[cfg(feature = "server-tests")]
mod postgres_down;
#[cfg(feature = "server-tests")]
mod redis_down;
#[cfg(feature = "server-tests")]
mod servers;
mod shutdown;
mod wecom_down;

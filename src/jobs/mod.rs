//! Periodic work: the org sync, the reconciliation of customer relations, the first import, reminder
//! pushes, the morning agenda with stale-lead nudges, and the managers' daily summary.
//! Every instance runs the schedule; run records make each run happen once.

pub mod cards;
pub mod daily;
pub mod leads;
pub mod reminder_push;
pub mod scheduler;
pub mod summary;

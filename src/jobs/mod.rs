//! Periodic work: the org sync, the reconciliation of customer relations, and the first import.
//! Every instance runs the schedule; run records make each run happen once.

pub mod reminder_push;
pub mod runs;
pub mod scheduler;

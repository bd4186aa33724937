//! sea-orm entities, one file per table, kept apart from the code that uses them. The schema itself is
//! owned by the `migration` crate.

pub mod api_token;
pub mod audit;
pub mod card_action;
pub mod channel;
pub mod customer;
pub mod deal;
pub mod deal_stage;
pub mod department;
pub mod follow_up;
pub mod follow_up_day;
pub mod follower;
pub mod inbox;
pub mod job_run;
pub mod kv_state;
pub mod lead_assignment;
pub mod member;
pub mod member_department;
pub mod outbox;
pub mod reminder;
pub mod sales_target;

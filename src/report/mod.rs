//! The managers' daily summary as people read it — who gets one and of whom, the figures, the
//! customers at risk, and the text — shared by the chat (`日报`) and the job that sends it every
//! evening (`jobs::summary`), so both say the same.

mod compose;
mod figures;
pub mod pipeline;
mod recipients;
mod segments;

pub use self::compose::{Format, Rendered, compose, for_chat, render, render_for};
pub use self::figures::{AtRisk, OrgFigures, RiskItem, at_risk, org_figures};
pub use self::recipients::{Recipient, SummaryError, chosen, member_names, recipients};

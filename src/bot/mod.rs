//! The chat bot: reps work with the CRM by sending text messages to the WeCom app.

pub mod time;

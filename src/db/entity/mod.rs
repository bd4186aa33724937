//! sea-orm entities, one file per table, kept apart from the code that uses them. The schema itself is
//! owned by the `migration` crate.

pub mod inbox;

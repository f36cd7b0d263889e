//! A client session's state machine: dispatch, transaction control, SET/SHOW/RESET and
//! settings, Describe and parameter typing, timeouts and cancel, SQL cursors and prepared
//! statements. Imports [`crate::sql`] and below.

pub mod cursors;
pub mod machine;
pub mod placeholders;
pub mod prepared;
pub mod set_config;

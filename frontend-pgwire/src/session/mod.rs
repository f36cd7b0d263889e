//! A client session's state machine: dispatch, transaction control, SET/SHOW/RESET and
//! settings, Describe and parameter typing, timeouts and cancel, SQL cursors and prepared
//! statements, COPY FROM's data. Answers in weft's own terms ([`crate::sql::outcome`]);
//! imports [`crate::sql`] and below, never the wire protocol.
//!
//! - [`machine`]: the session's state and the dispatch of each statement;
//! - [`query_string`]: the statements of one simple-protocol query string;
//! - [`in_txn`]: statements inside the session's transaction;
//! - [`settings`]: SET, SHOW, RESET and startup parameters;
//! - [`describe`]: parameter types and result columns before a statement runs;
//! - [`copy_in`]: COPY FROM STDIN's data;
//! - [`cursors`], [`prepared`], [`placeholders`], [`set_config`]: SQL cursors, SQL
//!   PREPARE/EXECUTE, `$n` placeholders, `set_config()`.

pub mod copy_in;
pub mod cursors;
pub mod describe;
pub mod in_txn;
pub mod machine;
pub mod placeholders;
pub mod prepared;
pub mod query_string;
pub mod set_config;
pub mod setting_values;
pub mod settings;

//! # weft-frontend-pgwire
//!
//! The PostgreSQL wire protocol in front of weft: sessions, transactions, SQL through
//! DataFusion, errors with SQLSTATEs.
//!
//! - [`server`]: the listener; one task and one [`session::Session`] per connection.
//! - [`session`]: transaction states and the simple and extended protocol handlers.
//! - [`exec`]: DDL, DML and queries inside a transaction.
//! - [`db`]: the shared database handle and weft's catalog as DataFusion sees it.
//! - [`txn`]: a transaction's read timestamp, buffered writes and limits.
//! - [`encode`]: Arrow results to PostgreSQL rows.
//! - [`pgcatalog`], [`pgfuncs`]: `pg_catalog`, `information_schema` and the system functions
//!   clients call.
//! - [`error`][]: SQLSTATEs.

mod activity;
mod array_subquery;
mod arrays;
mod compat;
pub mod copy;
mod copy_load;
mod cursors;
mod datetime;
mod datetime_syntax;
pub mod db;
mod deferred;
pub mod encode;
pub mod error;
pub mod exec;
mod expr_rules;
mod fast;
mod floats;
mod group_by_key;
mod integers;
mod interval_scale;
mod jsonb;
pub mod names;
mod numeric;
mod pg_text;
mod pg_typeof;
pub mod pgcatalog;
pub mod pgfuncs;
mod placeholders;
mod prepared;
pub mod roles;
mod sequence_syntax;
pub mod sequences;
pub mod server;
pub mod session;
mod set_config;
mod subplan;
mod systable;
mod text_types;
pub mod tls;
mod to_char;
pub mod txn;
pub mod values;
mod wire_types;

pub use db::Db;
pub use txn::TxnLimits;

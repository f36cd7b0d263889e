//! weft's catalog and the node's shared state: tables, sequences and roles at a read
//! timestamp, the transaction that reads and writes them, PostgreSQL's `pg_catalog` and
//! `information_schema`, and the system functions clients call. Imports [`crate::types`]
//! and nothing else of the crate's layers.
//!
//! - [`db`]: the shared node handle (storage, adjudicator, limits, counters);
//! - [`txn`]: a transaction's snapshot, buffered writes and limits;
//! - [`systable`]: the system tables of named JSON definitions (put, lookup, list);
//! - [`sequences`], [`roles`]: the sequences and roles stored there;
//! - [`activity`]: the sessions open now (`pg_stat_activity`, cancel requests);
//! - [`pgcatalog`], [`pgfuncs`]: `pg_catalog`, `information_schema` and system functions.

pub mod activity;
pub mod auth;
pub mod db;
pub mod pgcatalog;
pub mod pgfuncs;
pub mod roles;
pub mod schema;
pub mod sequence_blocks;
pub mod sequences;
pub mod systable;
pub mod txn;
pub mod view;

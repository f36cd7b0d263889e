//! weft's catalog and the node's shared state: tables, sequences and roles at a read
//! timestamp, the transaction that reads and writes them, PostgreSQL's `pg_catalog` and
//! `information_schema`, and the system functions clients call. Imports [`crate::types`]
//! and nothing else of the crate's layers.
//!
//! - [`db`]: the shared node handle (storage, adjudicator, limits, counters); [`memory`]:
//!   the node's memory pool and each query's share of it;
//! - [`txn`], [`view`]: a transaction's snapshot, buffered writes and limits, and what a
//!   statement being planned reads;
//! - [`schema`]: weft's tables as DataFusion's catalog, at the statement's read timestamp;
//! - [`systable`]: the system tables of named JSON definitions (put, lookup, list);
//! - [`sequences`], [`sequence_blocks`], [`roles`], [`databases`], [`schemas`], [`auth`]:
//!   sequences, roles, databases and schemas stored there, the sequence values a node holds, authentication's
//!   configuration and secrets;
//! - [`activity`]: the sessions open now (`pg_stat_activity`, cancel requests);
//! - [`session_meta`], [`oids`], [`pg_get`], [`rows`]: what the catalog tables know of the
//!   session, object ids, PostgreSQL's renderings of objects, building a catalog table;
//! - [`pgcatalog`], [`information_schema`], [`char_columns`]: the catalog tables clients
//!   read, and the `"char"` columns of PostgreSQL's bundled rows;
//! - [`pgfuncs`], [`session_funcs`], [`sizes`]: the system functions clients call.

pub mod absent;
pub mod acl;
pub mod activity;
pub mod advisory;
pub mod auth;
pub mod char_columns;
pub mod crypto;
pub mod databases;
pub mod db;
pub mod depend;
pub mod durations;
pub mod grants;
pub mod indexes;
pub mod information_schema;
pub mod memory;
pub mod metrics;
pub mod oids;
pub mod pg_get;
pub mod pgcatalog;
pub mod pgfuncs;
pub mod privilege_funcs;
pub mod roles;
pub mod row_cache;
pub mod rows;
pub mod schema;
pub mod schema_funcs;
pub mod schemas;
pub mod sequence_blocks;
pub mod sequences;
pub mod session_funcs;
pub mod session_meta;
pub mod sizes;
pub mod systable;
pub mod tokens;
pub mod txn;
pub mod view;
pub mod view_catalog;
pub mod views;

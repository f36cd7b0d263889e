//! # weft-engine
//!
//! The core of weft: the types every other crate shares, and the storage node.
//!
//! - [`time`]: [`Timestamp`] (nanoseconds since the Unix epoch) and the bounded-error
//!   [`Clock`] from which read and commit timestamps are drawn.
//! - [`types`]: the SQL types weft stores, their Arrow representation and PostgreSQL names.
//! - [`schema`]: table definitions and the catalog encoding (the catalog is itself a table,
//!   so DDL is versioned and transactional like any other write).
//! - [`key`]: the order-preserving (memcomparable) encoding of primary keys.
//! - [`row`]: rows as vectors of scalars, and their conversion to and from Arrow batches.
//! - [`record`]: the commit record that flows frontend → adjudicator → journal → crossbar →
//!   storage.
//! - [`ownership`]: owner epochs and the lease under which an owner answers reads.
//! - [`storage`]: the MVCC storage node: memtable, Parquet segments, manifest, recovery.
//! - [`service`]: what a frontend asks of storage, as a trait a storage node answers in
//!   place or over RPC.
//! - [`provider`]: the DataFusion `TableProvider` that reads a table at a read timestamp,
//!   overlaid with a transaction's own uncommitted writes.

pub mod entropy;
pub mod error;
pub mod faults;
pub mod index;
pub mod key;
pub mod objstore;
pub mod ownership;
pub mod provider;
pub mod record;
pub mod row;
pub mod schema;
pub mod service;
pub mod storage;
pub mod time;
pub mod types;

pub use entropy::Entropy;
pub use error::{EngineError, EngineResult};
pub use record::{CommitRecord, TableWrites};
pub use row::Row;
pub use schema::{ColumnDef, TableDef};
pub use time::{Clock, ClockInterval, SystemClock, Timestamp, TokioClock};
pub use types::{SqlType, TypeError};

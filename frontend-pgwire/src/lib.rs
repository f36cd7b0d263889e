//! # weft-frontend-pgwire
//!
//! The PostgreSQL wire protocol in front of weft: sessions, transactions, SQL through
//! DataFusion, errors with SQLSTATEs. Four layers and a base, each a folder whose files
//! import only from the layers below it:
//!
//! - [`wire`]: the protocol (the only layer that imports `pgwire`);
//! - [`session`]: a session's state machine;
//! - [`sql`]: statements prepared, planned and executed;
//! - [`catalog`]: weft's catalog at a read timestamp, system tables, `pg_catalog`;
//! - [`types`]: PostgreSQL's types over Arrow (pure);
//! - [`error`]: SQLSTATEs, used by all.
//!
//! ARCHITECTURE.md at the repository's root follows a transaction through them.

pub mod catalog;
pub mod error;
pub mod session;
pub mod sql;
pub mod types;
pub mod wire;

pub use catalog::auth;
pub use catalog::db::Db;
pub use catalog::txn::TxnLimits;
pub use sql::context::new_db;
pub use wire::{server, tls};

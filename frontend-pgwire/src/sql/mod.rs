//! SQL statements: their preparation (parsing, compatibility rewrites, names), their
//! planning through DataFusion, and their execution inside a transaction (DDL, DML, COPY,
//! the point fast paths, SubPlans). Returns weft's own outcome type; knows nothing of the
//! wire protocol or of a session's state machine. Imports [`crate::catalog`] and
//! [`crate::types`].
//!
//! - [`compat`], [`names`], [`array_subquery`], [`datetime_syntax`], [`sequence_syntax`],
//!   [`jsonb_syntax`], [`group_by_key`]: rewrites of the parsed statement;
//! - [`subplan`]: correlated subqueries DataFusion cannot decorrelate;
//! - [`exec`]: DDL, DML and queries; [`fast`]: point reads and writes without planning;
//! - [`copy`], [`copy_load`]: COPY's formats and its direct load path.

pub mod array_subquery;
pub mod compat;
pub mod context;
pub mod copy;
pub mod copy_load;
pub mod datetime_syntax;
pub mod exec;
pub mod fast;
pub mod group_by_key;
pub mod jsonb_syntax;
pub mod names;
pub mod origins;
pub mod outcome;
pub mod prepare;
pub mod role_ddl;
pub mod sequence_syntax;
pub mod subplan;

//! SQL statements: their preparation (parsing, compatibility rewrites, names), their
//! planning through DataFusion, and their execution inside a transaction (DDL, DML, COPY,
//! the point fast paths, SubPlans). Returns weft's own outcome type; knows nothing of the
//! wire protocol or of a session's state machine. Imports [`crate::catalog`] and
//! [`crate::types`].
//!
//! - [`prepare`]: parsing and the rewrite pipeline every statement passes, through
//!   [`compat`], [`names`], [`array_subquery`], [`datetime_syntax`], [`sequence_syntax`],
//!   [`jsonb_syntax`], [`fetch_syntax`] and [`group_by_key`];
//! - [`context`]: the DataFusion adapter (the template state, a session's context);
//! - [`exec`]: the executor, queries and row locks; [`ddl`], [`dml`], [`role_ddl`]: the
//!   statements that write; [`fast`]: point reads and writes without planning;
//! - [`subplan`]: correlated subqueries DataFusion cannot decorrelate;
//! - [`copy`], [`copy_format`], [`copy_fields`], [`copy_exec`], [`copy_load`]: COPY FROM's
//!   parsing, the formats, records as text columns, execution, the direct load path;
//! - [`database_ddl`]: CREATE and DROP DATABASE, carried past the parser by [`carrier`];
//!   [`schema_ddl`]: CREATE and DROP SCHEMA of the schemas there are;
//! - [`outcome`], [`origins`]: what a statement produced, and where its columns come from;
//!   [`stream`]: a query's rows streamed to the client in its share of the node's memory.

pub mod alter_columns;
pub mod alter_constraints;
pub mod alter_sequence;
pub mod alter_table;
pub mod array_subquery;
pub mod carrier;
pub mod comments;
pub mod compat;
pub mod constraint_mode;
pub mod context;
pub mod copy;
pub mod copy_chunk;
pub mod copy_exec;
pub mod copy_fields;
pub mod copy_format;
pub mod copy_load;
pub mod copy_syntax;
pub mod database_ddl;
pub mod datetime_syntax;
pub mod ddl;
pub mod default_text;
pub mod dml;
pub mod exec;
pub mod fast;
pub mod fetch_syntax;
pub mod foreign_keys;
pub mod grant;
pub mod group_by_key;
pub mod identity;
pub mod index_build;
pub mod index_ddl;
pub mod jsonb_syntax;
pub mod lock_table;
pub mod maintenance;
pub mod names;
pub mod origins;
pub mod outcome;
pub mod ownership;
pub mod partial_index;
pub mod prepare;
pub mod primary_key;
pub mod privilege_needs;
pub mod privileges;
pub mod role_ddl;
pub mod role_grant;
pub mod row_write;
pub mod schema_ddl;
pub mod search_path;
pub mod sequence_syntax;
pub mod srf_syntax;
pub mod stream;
pub mod subplan;
pub mod system_columns;
pub mod unnest_syntax;
pub mod view_ddl;
pub mod view_expand;

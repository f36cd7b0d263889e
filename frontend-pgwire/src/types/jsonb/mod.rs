//! json and jsonb: their stored form, operators, functions, aggregates and set-returning
//! functions, as PostgreSQL defines them.
//!
//! weft stores both as text (field metadata names the type): jsonb in PostgreSQL's
//! canonical form ([`value`]), json as written. The layers, each importing only those
//! above it:
//! - [`value`]: parsing and printing (the pure core);
//! - [`ops`]: operators and functions on parsed values (pure);
//! - [`to_json`]: SQL values as JSON;
//! - [`udfs`]: the functions over Arrow columns;
//! - [`planner`], [`sets`]: how operators, casts, aggregates and set-returning functions
//!   reach those functions in a plan (the select-list rewrite is `crate::sql::jsonb_syntax`).
//!
//! Where weft differs from PostgreSQL is in docs/decisions.md, "json and jsonb".

pub mod ops;
pub mod planner;
pub mod sets;
pub mod to_json;
pub mod udfs;
pub mod value;

pub use value::canonical;

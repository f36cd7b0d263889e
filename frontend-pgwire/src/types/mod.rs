//! PostgreSQL's types over Arrow, as DataFusion sees them: the analyzer rules, expression
//! planners and functions that make comparisons, arithmetic, casts and text output give
//! PostgreSQL's answers. Pure: no I/O, no catalog, no session; everything above may use it.
//!
//! - [`expr_rules`]: helpers for rewriting expressions inside plans;
//! - [`values`]: PostgreSQL's text input of a value of a stored type;
//! - [`column_type`]: the PostgreSQL type a column has;
//! - [`pg_text`]: PostgreSQL's text output of floats, timestamps and intervals;
//! - [`integers`], [`floats`], [`numeric`]: checked arithmetic, result types and scales;
//! - [`datetime`], [`interval_scale`], [`to_char`]: dates, times and intervals;
//! - [`text_types`]: character(n), varchar, uuid and bytea in comparisons;
//! - [`arrays`], [`jsonb`]: array and json values, operators and functions;
//! - [`pg_typeof`]: the `pg_typeof(x)` function.

pub mod arrays;
pub mod binary_array;
pub mod column_type;
pub mod datetime;
pub mod expr_rules;
pub mod floats;
pub mod integers;
pub mod interval_scale;
pub mod jsonb;
pub mod numeric;
pub mod pg_text;
pub mod pg_typeof;
pub mod text_types;
pub mod to_char;
pub mod values;

/// Seconds `f` takes at its best of three runs (for the tests that check that a parser's
/// time grows linearly with its input).
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // measures real time: a linearity check
pub(crate) fn best_of_three(f: impl Fn()) -> f64 {
    (0..3)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

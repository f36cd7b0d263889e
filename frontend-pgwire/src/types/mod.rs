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
//! - [`arrays`], [`array_out`], [`jsonb`]: array and json values (their text input and
//!   output), operators and functions;
//! - [`pg_typeof`]: the `pg_typeof(x)` function.

pub mod array_out;
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
pub mod numeric_input;
pub mod pg_text;
pub mod pg_typeof;
pub mod text_types;
pub mod to_char;
pub mod values;

/// Checks that `parse(mb)`'s time grows linearly with its input of `mb` megabytes: 16 MB
/// against 2 MB, each at its best of five runs. Linear work takes 8 times as long, quadratic
/// work 64 times; the bound of 24 leaves room for a loaded machine's noise on either side.
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // measures real time: a linearity check
pub(crate) fn assert_linear(what: &str, parse: impl Fn(usize)) {
    let best = |mb: usize| {
        (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                parse(mb);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let (small, large) = (best(2), best(16));
    assert!(
        large < small * 24.0,
        "{what}: 2 MB in {small:.3} s, 16 MB in {large:.3} s"
    );
}

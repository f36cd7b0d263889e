//! Dates, timestamps and intervals as PostgreSQL computes them, where DataFusion's differ:
//! - `x AT TIME ZONE z`: a timestamptz gives the wall-clock time in `z` (a timestamp), a
//!   timestamp or date is read as wall-clock time in `z` (a timestamptz). DataFusion only
//!   relabels the zone, which weft (printing timestamptz in UTC) shows as the same value.
//!   `z` is an IANA name or UTC; PostgreSQL's POSIX-style offsets (`'+02'`, whose sign is
//!   inverted) are refused rather than guessed.
//! - `interval * number` and `interval / number` (crate::types::interval_scale).
//! - `date ± interval` is a timestamp (DataFusion keeps a date, dropping the time); `date ±
//!   integer` stays a date.
//! - `timestamp - timestamp` moves whole days out of the time (`6 days 12:00:00`), as
//!   `justify_hours` (also registered) does; a timestamp cast to text prints as PostgreSQL
//!   prints it (no `T`).
//! - Intervals compare as PostgreSQL compares them, with a month as 30 days and a day as
//!   24 hours (`'1 day' = '24 hours'`); DataFusion compares their fields one by one.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, TimestampMicrosecondArray};
use arrow::datatypes::{
    DataType, IntervalMonthDayNanoType, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use chrono::{LocalResult, NaiveDateTime, Offset, TimeZone};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast;

use crate::error::{codes, SqlError};

const MICROS_PER_DAY: i128 = 86_400_000_000;

fn sql_error(code: &'static str, message: String) -> DataFusionError {
    DataFusionError::External(Box::new(SqlError::new(code, message)))
}

/// The zone `AT TIME ZONE` names.
fn zone(name: &str) -> Result<Tz> {
    let n = name.trim();
    let fixed = n.starts_with(['+', '-']) || n.bytes().all(|b| b.is_ascii_digit());
    let tz = if n.eq_ignore_ascii_case("utc") || n.eq_ignore_ascii_case("gmt") || n == "Z" {
        Tz::from_str("UTC").ok()
    } else if fixed {
        None
    } else {
        Tz::from_str(n).ok()
    };
    tz.ok_or_else(|| {
        sql_error(
            codes::INVALID_PARAMETER_VALUE,
            format!("time zone \"{name}\" not recognized"),
        )
    })
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// Wall-clock time in `tz` of the instant `micros` (UTC).
fn to_local(micros: i64, tz: &Tz) -> Option<i64> {
    let utc = naive(micros)?;
    let offset = tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64;
    Some(micros + offset * 1_000_000)
}

/// The instant (UTC) at which the wall clock in `tz` reads `micros`. An ambiguous time
/// (clocks turned back) is the earlier instant; a time skipped by clocks turned forward is
/// read with the offset before the change, as PostgreSQL reads it.
fn from_local(micros: i64, tz: &Tz) -> Option<i64> {
    let local = naive(micros)?;
    let offset = match tz.offset_from_local_datetime(&local) {
        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => o.fix(),
        LocalResult::None => {
            let before = local - chrono::Duration::hours(3);
            tz.offset_from_utc_datetime(&before).fix()
        }
    };
    Some(micros - offset.local_minus_utc() as i64 * 1_000_000)
}

/// `weft_at_time_zone(x, zone)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

/// An instant: a timestamptz, or a date (midnight in the session's zone, UTC, as
/// PostgreSQL reads a date given to `AT TIME ZONE`).
fn with_zone(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, Some(_)) | DataType::Date32 | DataType::Date64
    )
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        "weft_at_time_zone"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(if with_zone(&args[0]) {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        } else {
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].data_type();
        let rows = crate::types::expr_rules::rows_of(&args.args);
        let n = rows.unwrap_or(1);
        let ts = args.args[0].to_array(n)?;
        let ts = arrow::compute::cast(&ts, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let zones = arrow::compute::cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let zones = zones.as_string::<i32>();
        let mut out = Vec::with_capacity(n);
        let mut cached: Option<(String, Tz)> = None;
        for i in 0..n {
            if ts.is_null(i) || zones.is_null(i) {
                out.push(None);
                continue;
            }
            let name = zones.value(i);
            let tz = match &cached {
                Some((c, tz)) if c == name => *tz,
                _ => {
                    let tz = zone(name)?;
                    cached = Some((name.to_string(), tz));
                    tz
                }
            };
            let v = ts.value(i);
            let r = if with_zone(&input) {
                to_local(v, &tz)
            } else {
                from_local(v, &tz)
            };
            out.push(Some(r.ok_or_else(|| {
                sql_error(
                    codes::DATETIME_FIELD_OVERFLOW,
                    "timestamp out of range".into(),
                )
            })?));
        }
        let out = TimestampMicrosecondArray::from(out);
        let out: ArrayRef = if with_zone(&input) {
            Arc::new(out)
        } else {
            Arc::new(out.with_timezone("UTC"))
        };
        crate::types::expr_rules::shaped(out, rows)
    }
}

/// `weft_interval_key(i)`: an interval as PostgreSQL orders it, in microseconds with a
/// month of 30 days (a decimal: the sum can pass an i64).
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalKey {
    signature: Signature,
}

impl ScalarUDFImpl for IntervalKey {
    fn name(&self) -> &str {
        "weft_interval_key"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        crate::types::expr_rules::map_values(&args.args[0], |a| {
            let a = arrow::compute::cast(a, &DataType::Interval(IntervalUnit::MonthDayNano))?;
            let out: Decimal128Array = a
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        (v.months as i128 * 30 + v.days as i128) * MICROS_PER_DAY
                            + (v.nanoseconds as i128).div_euclid(1000)
                    })
                })
                .collect();
            Ok(Arc::new(out.with_precision_and_scale(38, 0)?) as ArrayRef)
        })
    }
}

/// `justify_hours(i)`: whole days of an interval's time moved into its days, as
/// PostgreSQL's `timestamp - timestamp` gives them (`6 days 12:00:00`, not `156:00:00`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JustifyHours {
    signature: Signature,
}

impl ScalarUDFImpl for JustifyHours {
    fn name(&self) -> &str {
        "justify_hours"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        crate::types::expr_rules::map_values(&args.args[0], |a| {
            let a = arrow::compute::cast(a, &DataType::Interval(IntervalUnit::MonthDayNano))?;
            let out: arrow::array::IntervalMonthDayNanoArray = a
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| v.map(justify_hours))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// PostgreSQL's interval_justify_hours: whole days out of the time, and days and time of
/// one sign.
fn justify_hours(
    v: arrow::datatypes::IntervalMonthDayNano,
) -> arrow::datatypes::IntervalMonthDayNano {
    let mut days = v.days as i64 + v.nanoseconds / NANOS_PER_DAY;
    let mut nanos = v.nanoseconds % NANOS_PER_DAY;
    if days > 0 && nanos < 0 {
        nanos += NANOS_PER_DAY;
        days -= 1;
    } else if days < 0 && nanos > 0 {
        nanos -= NANOS_PER_DAY;
        days += 1;
    }
    arrow::datatypes::IntervalMonthDayNano::new(v.months, days as i32, nanos)
}

/// `weft_timestamp_text(ts)`: a timestamp cast to text as PostgreSQL prints it (a space,
/// not `T`, between date and time; `+00` for a timestamptz).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    signature: Signature,
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        "weft_timestamp_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let tz = with_zone(&args.args[0].data_type());
        crate::types::expr_rules::map_values(&args.args[0], |a| {
            let a = arrow::compute::cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let out: arrow::array::StringArray = a
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.map(|v| crate::types::pg_text::pg_timestamp_text(v as i128 * 1000, tz)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// `justify_hours`, registered as PostgreSQL's function of that name.
pub fn justify_hours_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(JustifyHours {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// The function `weft_at_time_zone`, registered for the statements
/// [`crate::sql::datetime_syntax::rewrite`] changes.
pub fn at_time_zone_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(AtTimeZone {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// `date ± interval` as `timestamp ± interval`, when the expression is planned (its type
/// is the expression's own from the start).
#[derive(Debug, Default)]
pub struct DateIntervalArithmetic;

impl ExprPlanner for DateIntervalArithmetic {
    fn plan_binary_op(
        &self,
        mut expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let timestamp = |e: Expr| {
            Expr::Cast(Cast::new(
                Box::new(e),
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ))
        };
        let plus = matches!(expr.op, ast::BinaryOperator::Plus);
        let minus = matches!(expr.op, ast::BinaryOperator::Minus);
        let times = matches!(expr.op, ast::BinaryOperator::Multiply);
        let divide = matches!(expr.op, ast::BinaryOperator::Divide);
        if !plus && !minus && !times && !divide {
            return Ok(PlannerResult::Original(expr));
        }
        let (lt, rt) = (expr.left.get_type(schema)?, expr.right.get_type(schema)?);
        if times || divide {
            // interval * number, number * interval, interval / number.
            let number = |t: &DataType| t.is_numeric();
            let (span, factor) = if is_interval(&lt) && number(&rt) {
                (expr.left, expr.right)
            } else if times && number(&lt) && is_interval(&rt) {
                (expr.right, expr.left)
            } else {
                return Ok(PlannerResult::Original(expr));
            };
            return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    Arc::new(crate::types::interval_scale::udf(divide)),
                    vec![span, factor],
                ),
            )));
        }
        if minus && matches!(lt, DataType::Timestamp(..)) && matches!(rt, DataType::Timestamp(..)) {
            // An interval with whole days, not DataFusion's duration in hours.
            let difference = Expr::BinaryExpr(BinaryExpr::new(
                Box::new(expr.left),
                Operator::Minus,
                Box::new(expr.right),
            ));
            return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                ScalarFunction::new_udf(Arc::new(justify_hours_udf()), vec![difference]),
            )));
        }
        if lt == DataType::Date32 && is_interval(&rt) {
            expr.left = timestamp(expr.left);
        } else if plus && is_interval(&lt) && rt == DataType::Date32 {
            expr.right = timestamp(expr.right);
        }
        Ok(PlannerResult::Original(expr))
    }
}

/// Interval comparisons, after type coercion.
#[derive(Debug)]
pub struct DateTimeSemantics {
    key: Arc<ScalarUDF>,
    text: Arc<ScalarUDF>,
}

impl Default for DateTimeSemantics {
    fn default() -> Self {
        DateTimeSemantics {
            key: Arc::new(ScalarUDF::new_from_impl(IntervalKey {
                signature: Signature::any(1, Volatility::Immutable),
            })),
            text: Arc::new(ScalarUDF::new_from_impl(TimestampText {
                signature: Signature::any(1, Volatility::Immutable),
            })),
        }
    }
}

fn is_interval(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_))
}

impl DateTimeSemantics {
    fn rewrite(&self, e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let b = match e {
            Expr::BinaryExpr(b) => b,
            Expr::Cast(c)
                if crate::types::expr_rules::is_text(c.field.data_type())
                    && matches!(c.expr.get_type(schema)?, DataType::Timestamp(..)) =>
            {
                let to = c.field.data_type().clone();
                return Ok(Transformed::yes(crate::types::expr_rules::text_cast(
                    &self.text, *c.expr, to,
                )));
            }
            other => return Ok(Transformed::no(other)),
        };
        let (lt, rt) = (b.left.get_type(schema)?, b.right.get_type(schema)?);
        match b.op {
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
                if is_interval(&lt) && is_interval(&rt) =>
            {
                let key = |e: Expr| {
                    Box::new(Expr::ScalarFunction(ScalarFunction::new_udf(
                        self.key.clone(),
                        vec![e],
                    )))
                };
                Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    key(*b.left),
                    b.op,
                    key(*b.right),
                ))))
            }
            _ => Ok(Transformed::no(Expr::BinaryExpr(b))),
        }
    }
}

impl AnalyzerRule for DateTimeSemantics {
    fn name(&self) -> &str {
        "weft_datetime_semantics"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| self.rewrite(e, schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn wall_clock_in_a_zone_and_back() {
        let ny = zone("America/New_York").unwrap();
        // Summer: UTC-4.
        assert_eq!(
            to_local(micros("2024-06-01 00:00:00"), &ny),
            Some(micros("2024-05-31 20:00:00"))
        );
        assert_eq!(
            from_local(micros("2024-05-31 20:00:00"), &ny),
            Some(micros("2024-06-01 00:00:00"))
        );
        // 02:30 on the day clocks go forward does not exist: read with the offset before.
        assert_eq!(
            from_local(micros("2024-03-10 02:30:00"), &ny),
            Some(micros("2024-03-10 07:30:00"))
        );
        assert!(zone("+02").is_err());
        assert!(zone("Mars/Olympus").is_err());
        assert!(zone("utc").is_ok());
    }
}

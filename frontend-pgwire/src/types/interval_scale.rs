//! `interval * number`, `number * interval` and `interval / number` as PostgreSQL's
//! interval_mul computes them: months and days are scaled and truncated, the fraction of a
//! month spills into days (a month is 30 days) and the fraction of a day into the time,
//! which is rounded to the microsecond. DataFusion has no such operators.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, IntervalMonthDayNanoArray};
use arrow::datatypes::{
    DataType, Float64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{codes, SqlError};

const SECS_PER_DAY: f64 = 86_400.0;

fn out_of_range() -> DataFusionError {
    DataFusionError::External(Box::new(SqlError::new(
        codes::DATETIME_FIELD_OVERFLOW,
        "interval out of range",
    )))
}

/// PostgreSQL's interval_mul (or, `divide`, interval_div) of one interval by `factor`.
pub fn scale(v: IntervalMonthDayNano, factor: f64, divide: bool) -> Result<IntervalMonthDayNano> {
    let by = |x: f64| if divide { x / factor } else { x * factor };
    let months_f = by(v.months as f64);
    let days_f = by(v.days as f64);
    if !months_f.is_finite() || !days_f.is_finite() || months_f.abs() > i32::MAX as f64 {
        return Err(out_of_range());
    }
    let months = months_f.trunc();
    let mut days = days_f.trunc();
    // Rounded to a millionth of a day, as PostgreSQL's TSROUND does.
    let month_remainder_days = (((months_f - months) * 30.0) * 1e6).round() / 1e6;
    let day_remainder = days_f - days;
    // Seconds left over from the fractions, rounded to the microsecond.
    let mut sec_remainder =
        (day_remainder + month_remainder_days - month_remainder_days.trunc()) * SECS_PER_DAY;
    sec_remainder = (sec_remainder * 1e6).round() / 1e6;
    if sec_remainder.abs() >= SECS_PER_DAY {
        let whole = (sec_remainder / SECS_PER_DAY).trunc();
        days += whole;
        sec_remainder -= whole * SECS_PER_DAY;
    }
    days += month_remainder_days.trunc();
    let micros = (by(v.nanoseconds as f64 / 1000.0) + sec_remainder * 1e6).round();
    if days.abs() > i32::MAX as f64
        || !micros.is_finite()
        || micros.abs() > i64::MAX as f64 / 1000.0
    {
        return Err(out_of_range());
    }
    Ok(IntervalMonthDayNano::new(
        months as i32,
        days as i32,
        micros as i64 * 1000,
    ))
}

/// `weft_interval_scale(interval, factor, divide)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalScale {
    signature: Signature,
    divide: bool,
}

impl ScalarUDFImpl for IntervalScale {
    fn name(&self) -> &str {
        if self.divide {
            "weft_interval_div"
        } else {
            "weft_interval_mul"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = crate::types::expr_rules::rows_of(&args.args);
        let n = rows.unwrap_or(1);
        let spans = arrow::compute::cast(
            &args.args[0].to_array(n)?,
            &DataType::Interval(IntervalUnit::MonthDayNano),
        )?;
        let spans = spans.as_primitive::<IntervalMonthDayNanoType>();
        let factors = arrow::compute::cast(&args.args[1].to_array(n)?, &DataType::Float64)?;
        let factors = factors.as_primitive::<Float64Type>();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if spans.is_null(i) || factors.is_null(i) {
                out.push(None);
                continue;
            }
            let f = factors.value(i);
            if self.divide && f == 0.0 {
                return Err(DataFusionError::External(Box::new(SqlError::new(
                    codes::DIVISION_BY_ZERO,
                    "division by zero",
                ))));
            }
            out.push(Some(scale(spans.value(i), f, self.divide)?));
        }
        let out: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(out));
        crate::types::expr_rules::shaped(out, rows)
    }
}

/// The multiplication (`divide` false) or division function.
pub fn udf(divide: bool) -> ScalarUDF {
    ScalarUDF::new_from_impl(IntervalScale {
        signature: Signature::any(2, Volatility::Immutable),
        divide,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, hours: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, hours * 3_600_000_000_000)
    }

    #[test]
    fn scales_as_postgresql_does() {
        assert_eq!(scale(iv(0, 1, 0), 2.0, false).unwrap(), iv(0, 2, 0));
        assert_eq!(
            scale(iv(0, 0, 1), 2.0, true).unwrap(),
            IntervalMonthDayNano::new(0, 0, 1_800_000_000_000)
        );
        assert_eq!(scale(iv(0, 1, 0), 1.5, false).unwrap(), iv(0, 1, 12));
        assert_eq!(scale(iv(1, 0, 0), 1.5, false).unwrap(), iv(1, 15, 0));
        assert_eq!(scale(iv(1, 0, 0), 3.0, true).unwrap(), iv(0, 10, 0));
        assert_eq!(scale(iv(0, 3, 0), 2.0, true).unwrap(), iv(0, 1, 12));
        assert!(scale(iv(i32::MAX, 0, 0), 4.0, false).is_err());
    }
}

//! `numeric` division and `avg` with PostgreSQL's result scales.
//!
//! weft stores `numeric` as Arrow's Decimal128: a fixed scale per column (10 for `numeric`
//! declared without one). PostgreSQL's numeric carries a scale per value, and a division
//! picks the scale of each quotient from its operands (`select_div_scale`): at least 16
//! significant digits, more when an operand has more fractional digits. DataFusion's
//! decimal division keeps far fewer (`1::numeric / 3` gave 0.33333333333333) and its
//! `avg` truncates at the input's scale + 4 (0.050144 for 0.05014459...).
//!
//! Here:
//! - [`NumericSemantics`] rewrites `a / b`, where one side is a decimal and the other a
//!   decimal or an integer, into `weft_numeric_div(a, b)`, and `avg(x)` of a decimal or an
//!   integer into `weft_numeric_div(sum(x), count(x))` (PostgreSQL's avg of an integer is a
//!   numeric too);
//! - `weft_numeric_div` computes each quotient exactly and rounds it, half away from zero,
//!   at the scale PostgreSQL would give it: `max(16 - 4 * w, s1, s2)`, where `w` is the
//!   quotient's weight in base-10000 digits and `s1`, `s2` the operands' scales. The
//!   column it returns has scale [`QUOTIENT_SCALE`] (or an operand's, if larger), and field
//!   metadata that tells the encoder to print each value at that same per-value scale.
//!
//! Where this still differs from PostgreSQL (docs/decisions.md, "numeric"): a quotient
//! below 10^-4 keeps [`QUOTIENT_SCALE`] digits where PostgreSQL keeps 20 significant ones;
//! a quotient whose integer part needs more than 38 - [`QUOTIENT_SCALE`] digits is an
//! overflow error (22003); an exact quotient whose PostgreSQL scale is above 16 prints
//! without the zeros PostgreSQL appends past the 16th digit.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array};
use arrow::datatypes::{i256, DataType, Decimal128Type, Field, FieldRef};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams, ScalarFunction};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, Projection,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use crate::error::{codes, SqlError};

/// The scale of the column a numeric division returns (unless an operand's is larger):
/// room for PostgreSQL's 20 fractional digits of a quotient below 1.
pub const QUOTIENT_SCALE: i8 = 20;
/// PostgreSQL's NUMERIC_MIN_SIG_DIGITS: the significant digits a quotient keeps at least.
const MIN_SIG_DIGITS: i32 = 16;
/// Field metadata on a quotient column: the larger operand scale, below which no value's
/// printed scale goes. The encoder prints each value at [`quotient_display_scale`].
pub const QUOTIENT_SCALE_MIN_KEY: &str = "weft.quotient_scale_min";
const UDF_NAME: &str = "weft_numeric_div";

/// The base-10000 weight of a nonzero `value` at `scale`: the power of 10000 of its first
/// nonzero base-10000 digit (PostgreSQL's `weight` of a NumericVar).
pub fn weight(value: i128, scale: i8) -> i32 {
    let digits = value
        .unsigned_abs()
        .checked_ilog10()
        .map_or(0, |d| d as i32 + 1);
    // The leading digit's power of ten: 10^e <= |value| / 10^scale < 10^(e+1).
    let e = digits - 1 - scale as i32;
    e.div_euclid(4)
}

/// The base-10000 weight and first nonzero base-10000 digit of `value` at `scale`
/// ((0, 0) for zero), as PostgreSQL's NumericVar holds them.
fn weight_and_first_digit(value: i128, scale: i8) -> (i32, i128) {
    if value == 0 {
        return (0, 0);
    }
    let w = weight(value, scale);
    // The digit group of weight w: |value| / 10^(scale + 4w), mod 10000.
    let shift = scale as i32 + 4 * w;
    let abs = value.unsigned_abs();
    let group = if shift >= 0 {
        abs / 10u128.pow(shift as u32)
    } else {
        abs * 10u128.pow((-shift) as u32)
    };
    (w, (group % 10000) as i128)
}

/// The quotient weight PostgreSQL's `select_div_scale` estimates from the operands (the
/// difference of their weights, one less when the dividend's first digit is not larger).
fn pg_quotient_weight(v1: i128, s1: i8, v2: i128, s2: i8) -> i32 {
    let (w1, d1) = weight_and_first_digit(v1, s1);
    let (w2, d2) = weight_and_first_digit(v2, s2);
    let q = w1 - w2;
    if d1 <= d2 {
        q - 1
    } else {
        q
    }
}

/// The scale PostgreSQL gives a quotient of weight `w` whose operands had scales up to
/// `scale_min`, capped at the column's `scale`.
pub fn quotient_scale(w: i32, scale_min: i8, scale: i8) -> i8 {
    let s = (MIN_SIG_DIGITS - 4 * w).max(scale_min as i32).max(0);
    s.min(scale as i32) as i8
}

/// The scale a stored quotient prints with: [`quotient_scale`] of its own weight (zero
/// prints as a quotient of weight -1, like PostgreSQL's 0 / x for x of weight 0).
pub fn quotient_display_scale(value: i128, scale: i8, scale_min: i8) -> i8 {
    if value == 0 {
        return quotient_scale(-1, scale_min, scale);
    }
    quotient_scale(weight(value, scale), scale_min, scale)
}

/// `value` at `scale` printed with `shown` fractional digits (`shown <= scale`; the digits
/// dropped are zeros for a quotient rounded at its scale).
pub fn decimal_text(value: i128, scale: i8, shown: i8) -> String {
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale.max(0) as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    let frac = &frac[..(shown.max(0) as usize).min(frac.len())];
    let mut out = String::with_capacity(padded.len() + 2);
    if negative && (int.bytes().any(|b| b != b'0') || frac.bytes().any(|b| b != b'0')) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// The text of a Decimal128 value of a column with this field, where weft prints it
/// differently from arrow-pg: a quotient at its per-value scale, and `numeric` declared
/// without a scale (stored at scale 10) without trailing fractional zeros, as PostgreSQL
/// prints most such values (it keeps each value's input scale, which weft does not store).
pub fn display_text(field: &Field, value: i128) -> Option<String> {
    let DataType::Decimal128(precision, scale) = field.data_type() else {
        return None;
    };
    if let Some(min) = field
        .metadata()
        .get(QUOTIENT_SCALE_MIN_KEY)
        .and_then(|m| m.parse::<i8>().ok())
    {
        // Rounded at PostgreSQL's scale, which is this or 4 more: the digits past it are
        // zeros when PostgreSQL's is this one, and shown when not (unless they are zeros).
        let at_least = quotient_display_scale(value, *scale, min);
        let text = decimal_text(value, *scale, *scale);
        let frac_len = *scale as usize;
        let keep = frac_len
            - (text.len() - text.trim_end_matches('0').len()).min(frac_len - at_least as usize);
        return Some(decimal_text(value, *scale, keep as i8));
    }
    if (*precision, *scale) == UNCONSTRAINED {
        let text = decimal_text(value, *scale, *scale);
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        return Some(trimmed.to_string());
    }
    None
}

/// Whether [`display_text`] prints this field's values.
pub fn has_display_text(field: &Field) -> bool {
    match field.data_type() {
        DataType::Decimal128(p, s) => {
            (*p, *s) == UNCONSTRAINED || field.metadata().contains_key(QUOTIENT_SCALE_MIN_KEY)
        }
        _ => false,
    }
}

/// The Decimal128 type of `numeric` declared without precision and scale.
const UNCONSTRAINED: (u8, i8) = (
    weft_engine::types::NUMERIC_PRECISION_MAX,
    weft_engine::types::NUMERIC_DEFAULT_SCALE,
);

#[derive(Debug, PartialEq)]
pub enum DivError {
    DivisionByZero,
    Overflow,
}

/// `(v1 / 10^s1) / (v2 / 10^s2)` as a value at `scale`, rounded half away from zero at
/// PostgreSQL's scale for it (see [`quotient_scale`]).
pub fn divide(v1: i128, s1: i8, v2: i128, s2: i8, scale: i8) -> Result<i128, DivError> {
    if v2 == 0 {
        return Err(DivError::DivisionByZero);
    }
    let negative = (v1 < 0) != (v2 < 0);
    // |q| * 10^scale = |v1| * 10^(s2 + scale) / (|v2| * 10^s1), plus one guard digit.
    let pow = |n: i32| -> Result<i256, DivError> {
        i256::from_i128(10)
            .checked_pow(n as u32)
            .ok_or(DivError::Overflow)
    };
    let guard = 1;
    let up = s2 as i32 + scale as i32 + guard;
    let mut num = i256::from_i128(v1).wrapping_abs();
    let mut den = i256::from_i128(v2).wrapping_abs();
    if up >= s1 as i32 {
        num = num
            .checked_mul(pow(up - s1 as i32)?)
            .ok_or(DivError::Overflow)?;
    } else {
        den = den
            .checked_mul(pow(s1 as i32 - up)?)
            .ok_or(DivError::Overflow)?;
    }
    let q = num.checked_div(den).ok_or(DivError::Overflow)?; // at scale + 1, truncated
    let q = q.to_i128().ok_or(DivError::Overflow)?;
    let shown = quotient_scale(pg_quotient_weight(v1, s1, v2, s2), s1.max(s2), scale);
    // Round at `shown`: drop the digits past it (and the guard), half away from zero.
    let drop = 10i128.pow((scale - shown) as u32 + guard as u32);
    let (kept, rest) = (q / drop, q % drop);
    let half = drop / 2;
    // Half or more (the guard digit says so, truncated digits past it only add): round up.
    let kept = if rest >= half { kept + 1 } else { kept };
    let value = kept
        .checked_mul(10i128.pow((scale - shown) as u32))
        .ok_or(DivError::Overflow)?;
    if value.unsigned_abs().checked_ilog10().unwrap_or(0) >= 38 {
        return Err(DivError::Overflow);
    }
    Ok(if negative { -value } else { value })
}

fn sql_error(e: DivError) -> DataFusionError {
    let err = match e {
        DivError::DivisionByZero => SqlError::new(codes::DIVISION_BY_ZERO, "division by zero"),
        DivError::Overflow => SqlError::new(codes::NUMERIC_OUT_OF_RANGE, "numeric field overflow"),
    };
    DataFusionError::External(Box::new(err))
}

fn decimal_scale(t: &DataType) -> Option<i8> {
    match t {
        DataType::Decimal128(_, s) => Some(*s),
        _ => None,
    }
}

/// `weft_numeric_div(a, b)`: both arguments Decimal128 (the rule casts integers).
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericDiv {
    signature: Signature,
}

impl NumericDiv {
    fn result_scale(args: &[DataType]) -> Result<(i8, i8, i8, i8)> {
        let (Some(s1), Some(s2)) = (
            args.first().and_then(decimal_scale),
            args.get(1).and_then(decimal_scale),
        ) else {
            return Err(crate::error::SqlError::internal(format!(
                "{UDF_NAME} takes two decimals, not {args:?}"
            ))
            .into());
        };
        let min = s1.max(s2);
        Ok((s1, s2, min, QUOTIENT_SCALE.max(min)))
    }
}

impl ScalarUDFImpl for NumericDiv {
    fn name(&self) -> &str {
        UDF_NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let (_, _, _, scale) = Self::result_scale(args)?;
        Ok(DataType::Decimal128(38, scale))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let (_, _, min, scale) = Self::result_scale(&types)?;
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        let field = Field::new(UDF_NAME, DataType::Decimal128(38, scale), nullable)
            .with_metadata([(QUOTIENT_SCALE_MIN_KEY.to_string(), min.to_string())].into());
        Ok(Arc::new(field))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        let (s1, s2, _, scale) = Self::result_scale(&types)?;
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (
            arrays[0].as_primitive::<Decimal128Type>(),
            arrays[1].as_primitive::<Decimal128Type>(),
        );
        let mut out = Vec::with_capacity(a.len());
        for i in 0..a.len() {
            out.push(if a.is_null(i) || b.is_null(i) {
                None
            } else {
                Some(divide(a.value(i), s1, b.value(i), s2, scale).map_err(sql_error)?)
            });
        }
        let array: ArrayRef =
            Arc::new(Decimal128Array::from(out).with_precision_and_scale(38, scale)?);
        if scalars && array.len() == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// The `weft_numeric_div` function.
pub fn numeric_div_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(NumericDiv {
        signature: Signature::any(2, Volatility::Immutable),
    }))
}

/// Rewrites numeric division and `avg` (see the module docs).
#[derive(Debug)]
pub struct NumericSemantics {
    div: Arc<ScalarUDF>,
}

impl Default for NumericSemantics {
    fn default() -> Self {
        NumericSemantics {
            div: numeric_div_udf(),
        }
    }
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

/// `e` as a decimal operand: integers become Decimal128(20, 0) (every 64-bit value fits).
fn as_decimal(e: Expr, t: &DataType) -> Expr {
    if is_integer(t) {
        Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(e),
            DataType::Decimal128(20, 0),
        ))
    } else {
        e
    }
}

impl NumericSemantics {
    fn divide(&self, l: Expr, r: Expr) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(self.div.clone(), vec![l, r]))
    }

    /// `1e3` parses as a decimal of scale -3, which nothing downstream takes: it becomes
    /// the integer-valued decimal it is (PostgreSQL's numeric 1000).
    fn whole_literal(e: Expr) -> Result<Transformed<Expr>> {
        match e {
            Expr::Literal(ScalarValue::Decimal128(v, p, s), meta) if s < 0 => {
                let f = 10i128
                    .checked_pow(s.unsigned_abs() as u32)
                    .filter(|_| (p as i32 - s as i32) <= 38)
                    .ok_or_else(|| sql_error(DivError::Overflow))?;
                let v = match v {
                    Some(v) => Some(
                        v.checked_mul(f)
                            .ok_or_else(|| sql_error(DivError::Overflow))?,
                    ),
                    None => None,
                };
                Ok(Transformed::yes(Expr::Literal(
                    ScalarValue::Decimal128(v, (p as i32 - s as i32) as u8, 0),
                    meta,
                )))
            }
            e => Ok(Transformed::no(e)),
        }
    }

    fn rewrite_division(&self, e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) = e
        else {
            return Ok(Transformed::no(e));
        };
        let (lt, rt) = match (left.get_type(schema), right.get_type(schema)) {
            (Ok(l), Ok(r)) => (l, r),
            _ => {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Divide,
                    right,
                })))
            }
        };
        let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..));
        let numeric = |t: &DataType| decimal(t) || is_integer(t);
        if !(numeric(&lt) && numeric(&rt) && (decimal(&lt) || decimal(&rt))) {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Divide,
                right,
            })));
        }
        Ok(Transformed::yes(
            self.divide(as_decimal(*left, &lt), as_decimal(*right, &rt)),
        ))
    }

    /// `avg(x)` of decimals or integers in an Aggregate: `sum` in its place, a `count`
    /// after the other aggregates, and a projection above that divides them.
    fn rewrite_avg(&self, plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(Transformed::no(plan));
        };
        let input_schema = agg.input.schema().clone();
        let mut rewritten: Vec<Option<usize>> = Vec::with_capacity(agg.aggr_expr.len());
        let mut aggr_expr = Vec::with_capacity(agg.aggr_expr.len());
        let mut counts = Vec::new();
        for (i, e) in agg.aggr_expr.iter().enumerate() {
            match avg_parts(e, &input_schema)? {
                Some((sum, count)) => {
                    aggr_expr.push(sum.alias(format!("__weft_avg_sum_{i}")));
                    rewritten.push(Some(counts.len()));
                    counts.push(count.alias(format!("__weft_avg_count_{i}")));
                }
                None => {
                    aggr_expr.push(e.clone());
                    rewritten.push(None);
                }
            }
        }
        if counts.is_empty() {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let original = agg.schema.clone();
        let group_fields = original.fields().len() - agg.aggr_expr.len();
        let n_aggr = aggr_expr.len();
        aggr_expr.extend(counts);
        let new_agg = Aggregate::try_new(agg.input.clone(), agg.group_expr.clone(), aggr_expr)?;
        let new_schema = new_agg.schema.clone();
        let column = |k: usize| Expr::Column(new_schema.qualified_field(k).into());
        // The sum of narrow integers is an Int64, the count too: decimals for the division.
        let operand = |k: usize| as_decimal(column(k), new_schema.field(k).data_type());
        let mut exprs = Vec::with_capacity(original.fields().len());
        for k in 0..original.fields().len() {
            let (qualifier, field) = original.qualified_field(k);
            let e = match k.checked_sub(group_fields).and_then(|a| rewritten[a]) {
                Some(c) => self.divide(operand(k), operand(group_fields + n_aggr + c)),
                None => column(k),
            };
            exprs.push(e.alias_qualified(qualifier.cloned(), field.name()));
        }
        match Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(new_agg))) {
            Ok(p) => Ok(Transformed::yes(LogicalPlan::Projection(p))),
            // Two aggregates with one name (`avg(x)`, `avg(x::float8)`): left as they are.
            Err(_) => Ok(Transformed::no(LogicalPlan::Aggregate(agg))),
        }
    }
}

/// For `avg(x)` (possibly aliased) of a decimal or an integer: `sum` and `count` with the
/// same DISTINCT, FILTER and ORDER BY.
fn avg_parts(e: &Expr, schema: &DFSchema) -> Result<Option<(Expr, Expr)>> {
    let inner = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
        return Ok(None);
    };
    if func.name() != "avg" || params.args.len() != 1 {
        return Ok(None);
    }
    let arg = &params.args[0];
    let t = arg.get_type(schema)?;
    let sum_arg = match &t {
        DataType::Decimal128(..) => arg.clone(),
        // 64-bit sums could overflow: sum as decimals, as PostgreSQL sums as numeric.
        DataType::Int64 | DataType::UInt64 | DataType::UInt32 => Expr::Cast(
            datafusion::logical_expr::Cast::new(Box::new(arg.clone()), DataType::Decimal128(38, 0)),
        ),
        t if t.is_integer() => arg.clone(),
        _ => return Ok(None),
    };
    let with = |f: Arc<datafusion::logical_expr::AggregateUDF>, arg: Expr| {
        Expr::AggregateFunction(AggregateFunction {
            func: f,
            params: AggregateFunctionParams {
                args: vec![arg],
                distinct: params.distinct,
                filter: params.filter.clone(),
                order_by: params.order_by.clone(),
                null_treatment: params.null_treatment,
            },
        })
    };
    let sum = with(datafusion::functions_aggregate::sum::sum_udaf(), sum_arg);
    let count = with(
        datafusion::functions_aggregate::count::count_udaf(),
        arg.clone(),
    );
    Ok(Some((sum, count)))
}

impl AnalyzerRule for NumericSemantics {
    fn name(&self) -> &str {
        "weft_numeric_semantics"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            self.rewrite_avg(plan)?.transform_data(|plan| {
                crate::types::expr_rules::rewrite_node(plan, &|e, schema| {
                    Self::whole_literal(e)?.transform_data(|e| self.rewrite_division(e, schema))
                })
            })
        })
        .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn div_text(v1: i128, s1: i8, v2: i128, s2: i8) -> String {
        let scale = QUOTIENT_SCALE.max(s1).max(s2);
        let q = divide(v1, s1, v2, s2, scale).unwrap();
        let field = Field::new("q", DataType::Decimal128(38, scale), true)
            .with_metadata([(QUOTIENT_SCALE_MIN_KEY.to_string(), s1.max(s2).to_string())].into());
        display_text(&field, q).unwrap()
    }

    /// Each expected value is PostgreSQL 15's.
    #[test]
    fn quotients_have_postgresql_scales() {
        assert_eq!(div_text(1, 0, 3, 0), "0.33333333333333333333");
        assert_eq!(div_text(10, 0, 3, 0), "3.3333333333333333");
        assert_eq!(div_text(2, 0, 3, 0), "0.66666666666666666667");
        assert_eq!(div_text(100000, 0, 3, 0), "33333.333333333333");
        assert_eq!(div_text(-1, 0, 3, 0), "-0.33333333333333333333");
        assert_eq!(div_text(6, 0, 3, 0), "2.0000000000000000");
        assert_eq!(div_text(635, 2, 3, 0), "2.1166666666666667");
        assert_eq!(div_text(101833, 3, 3, 0), "33.9443333333333333");
        assert_eq!(div_text(225, 2, 110, 2), "2.0454545454545455");
        assert_eq!(div_text(1, 0, 7, 0), "0.14285714285714285714");
        assert_eq!(div_text(0, 0, 7, 0), "0.00000000000000000000");
        assert_eq!(div_text(99999999, 0, 7, 0), "14285714.142857142857");
        assert_eq!(div_text(1500, 0, 1501, 0), "0.99933377748167888075");
        assert_eq!(div_text(5, 0, 2, 0), "2.5000000000000000");
        // Where weft differs: an exact quotient PostgreSQL gives 20 digits (3.00 / 3 is
        // 1.00000000000000000000 there, 10001 / 10000 1.00010000000000000000) prints
        // with 16; a quotient below 10^-4 keeps 20 (0.000033333333333333333333 there).
        assert_eq!(div_text(300, 2, 3, 0), "1.0000000000000000");
        assert_eq!(div_text(10001, 0, 10000, 0), "1.0001000000000000");
        assert_eq!(div_text(1, 0, 30000, 0), "0.00003333333333333333");
    }

    #[test]
    fn division_errors() {
        assert_eq!(divide(1, 0, 0, 0, 20), Err(DivError::DivisionByZero));
        assert_eq!(
            divide(i128::MAX / 10, 0, 1, 10, 20),
            Err(DivError::Overflow)
        );
    }

    #[test]
    fn weights_are_base_10000() {
        assert_eq!(weight(1, 0), 0);
        assert_eq!(weight(9999, 0), 0);
        assert_eq!(weight(10000, 0), 1);
        assert_eq!(weight(5, 1), -1); // 0.5
        assert_eq!(weight(1, 4), -1); // 0.0001
        assert_eq!(weight(1, 5), -2); // 0.00001
    }
}

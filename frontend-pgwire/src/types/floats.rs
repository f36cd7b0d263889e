//! Floats as PostgreSQL computes them, where DataFusion's differ:
//! - `round(x)` rounds half to even (`round(2.5::float8)` is 2), where DataFusion rounds
//!   half away from zero. A numeric's `round` is already PostgreSQL's and is left alone.
//! - `+ - * /` are checked: dividing by zero is 22012, a finite result that overflows to
//!   infinity is 22003 "value out of range: overflow", and a product or quotient of non-zero
//!   values that comes out zero is 22003 "underflow" (DataFusion answers NaN, infinity and
//!   0 without an error).
//! - `real` with an integer or numeric computes in `double precision`, the type PostgreSQL
//!   resolves such an operator to (DataFusion stays in `real`, losing digits).
//! - A float cast to text prints as PostgreSQL prints it (`3` where DataFusion says `3.0`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::codes;
use crate::types::pg_text::pg_float_text;

#[derive(Debug, PartialEq, Eq, Hash)]
struct RoundEven {
    signature: Signature,
}

impl ScalarUDFImpl for RoundEven {
    fn name(&self) -> &str {
        "weft_round_even"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        crate::types::expr_rules::map_values(&args.args[0], |a| {
            Ok(match a.data_type() {
                DataType::Float32 => Arc::new(
                    a.as_primitive::<Float32Type>()
                        .unary::<_, Float32Type>(f32::round_ties_even),
                ),
                _ => Arc::new(
                    a.as_primitive::<Float64Type>()
                        .unary::<_, Float64Type>(f64::round_ties_even),
                ),
            })
        })
    }
}

/// Rewrites one-argument `round` of a float into `weft_round_even`.
#[derive(Debug)]
pub struct FloatRounding {
    udf: Arc<ScalarUDF>,
}

impl Default for FloatRounding {
    fn default() -> Self {
        FloatRounding {
            udf: Arc::new(ScalarUDF::new_from_impl(RoundEven {
                signature: Signature::any(1, Volatility::Immutable),
            })),
        }
    }
}

impl AnalyzerRule for FloatRounding {
    fn name(&self) -> &str {
        "weft_float_rounding"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| {
            let Expr::ScalarFunction(f) = e else {
                return Ok(Transformed::no(e));
            };
            let float = f.args.len() == 1
                && matches!(
                    f.args[0].get_type(schema)?,
                    DataType::Float64 | DataType::Float32
                );
            if f.func.name() != "round" || !float {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(self.udf.clone(), f.args),
            )))
        })
    }
}

/// `1e100::float8`: a number with an exponent cast to a float is read by the float's
/// input function (`'1e100'::float8`), which is the value PostgreSQL gets; as a numeric
/// literal first it may not fit weft's numeric (38 digits).
pub fn literal_casts(s: &mut datafusion::sql::sqlparser::ast::Statement) {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions_mut, DataType as T, Expr as E, Value, ValueWithSpan,
    };
    let _ = visit_expressions_mut(s, |e| {
        if let E::Cast {
            expr, data_type, ..
        } = e
        {
            let float = matches!(
                data_type,
                T::Float(_)
                    | T::Float4
                    | T::Float8
                    | T::Float32
                    | T::Float64
                    | T::Real
                    | T::Double(_)
                    | T::DoublePrecision
            );
            if let E::Value(ValueWithSpan {
                value: Value::Number(n, _),
                span,
            }) = expr.as_mut()
            {
                if float && n.contains(['e', 'E']) {
                    **expr = E::Value(ValueWithSpan {
                        value: Value::SingleQuotedString(n.clone()),
                        span: *span,
                    });
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// `weft_float_{add,sub,mul,div}(a, b)`: float arithmetic with PostgreSQL's checks.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatOp {
    name: &'static str,
    op: Operator,
    signature: Signature,
}

fn float_error(code: &'static str, message: &str) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::SqlError::new(code, message)))
}

/// PostgreSQL's checks on one result (float.h's float_overflow_error and friends).
fn checked(op: Operator, a: f64, b: f64, r: f64) -> Result<f64> {
    if op == Operator::Divide && b == 0.0 {
        return Err(float_error(codes::DIVISION_BY_ZERO, "division by zero"));
    }
    if r.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(float_error(
            codes::NUMERIC_OUT_OF_RANGE,
            "value out of range: overflow",
        ));
    }
    if r == 0.0
        && matches!(op, Operator::Multiply | Operator::Divide)
        && a != 0.0
        && (op == Operator::Divide || b != 0.0)
        && a.is_finite()
        && b.is_finite()
    {
        // x / inf is 0 legitimately; a product of two non-zeros is not.
        return Err(float_error(
            codes::NUMERIC_OUT_OF_RANGE,
            "value out of range: underflow",
        ));
    }
    Ok(r)
}

fn apply(op: Operator, a: f64, b: f64) -> f64 {
    match op {
        Operator::Plus => a + b,
        Operator::Minus => a - b,
        Operator::Multiply => a * b,
        _ => a / b,
    }
}

impl ScalarUDFImpl for FloatOp {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = crate::types::expr_rules::rows_of(&args.args);
        let n = rows.unwrap_or(1);
        let as_f64 = |v: &ColumnarValue| -> Result<ArrayRef> {
            let a = v.to_array(n)?;
            Ok(arrow::compute::cast(&a, &DataType::Float64)?)
        };
        let (a, b) = (as_f64(&args.args[0])?, as_f64(&args.args[1])?);
        let (a, b) = (
            a.as_primitive::<Float64Type>(),
            b.as_primitive::<Float64Type>(),
        );
        let mut out = arrow::array::Float64Builder::with_capacity(n);
        for i in 0..n {
            if a.is_null(i) || b.is_null(i) {
                out.append_null();
                continue;
            }
            let (x, y) = (a.value(i), b.value(i));
            let r = apply(self.op, x, y);
            let t = args.args[0].data_type();
            if t == DataType::Float32 {
                // real's own range: checked on the value it is stored as.
                let r32 = r as f32;
                checked(self.op, x, y, r32 as f64)?;
                out.append_value(r32 as f64);
            } else {
                out.append_value(checked(self.op, x, y, r)?);
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        let out = arrow::compute::cast(&out, &args.args[0].data_type())?;
        crate::types::expr_rules::shaped(out, rows)
    }
}

/// `weft_float_text(x)`: a float as PostgreSQL's float8out/float4out print it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatText {
    signature: Signature,
}

impl ScalarUDFImpl for FloatText {
    fn name(&self) -> &str {
        "weft_float_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        crate::types::expr_rules::map_values(&args.args[0], |a| {
            let out: arrow::array::StringArray = match a.data_type() {
                DataType::Float32 => a
                    .as_primitive::<Float32Type>()
                    .iter()
                    .map(|v| v.map(|v| pg_float_text(v as f64, 6, format!("{v:e}"))))
                    .collect(),
                _ => a
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| pg_float_text(v, 15, format!("{v:e}"))))
                    .collect(),
            };
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// Checked float arithmetic and float-to-text casts, after type coercion.
#[derive(Debug)]
pub struct FloatSemantics {
    add: Arc<ScalarUDF>,
    sub: Arc<ScalarUDF>,
    mul: Arc<ScalarUDF>,
    div: Arc<ScalarUDF>,
    text: Arc<ScalarUDF>,
}

impl Default for FloatSemantics {
    fn default() -> Self {
        let op = |name, op| {
            Arc::new(ScalarUDF::new_from_impl(FloatOp {
                name,
                op,
                signature: Signature::any(2, Volatility::Immutable),
            }))
        };
        FloatSemantics {
            add: op("weft_float_add", Operator::Plus),
            sub: op("weft_float_sub", Operator::Minus),
            mul: op("weft_float_mul", Operator::Multiply),
            div: op("weft_float_div", Operator::Divide),
            text: Arc::new(ScalarUDF::new_from_impl(FloatText {
                signature: Signature::any(1, Volatility::Immutable),
            })),
        }
    }
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64)
}

/// `real op integer` and `real op numeric` computed in double precision, when the
/// expression is planned (so its type is double precision from the start).
#[derive(Debug, Default)]
pub struct RealWidening;

impl datafusion::logical_expr::planner::ExprPlanner for RealWidening {
    fn plan_binary_op(
        &self,
        mut expr: datafusion::logical_expr::planner::RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<
        datafusion::logical_expr::planner::PlannerResult<
            datafusion::logical_expr::planner::RawBinaryExpr,
        >,
    > {
        use datafusion::logical_expr::planner::PlannerResult;
        use datafusion::sql::sqlparser::ast::BinaryOperator as B;
        if !matches!(expr.op, B::Plus | B::Minus | B::Multiply | B::Divide) {
            return Ok(PlannerResult::Original(expr));
        }
        let (lt, rt) = (expr.left.get_type(schema)?, expr.right.get_type(schema)?);
        let exact = |t: &DataType| t.is_integer() || matches!(t, DataType::Decimal128(..));
        let to_f64 = |e: Expr| {
            Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(e),
                DataType::Float64,
            ))
        };
        if lt == DataType::Float32 && exact(&rt) {
            expr.left = to_f64(expr.left);
        } else if rt == DataType::Float32 && exact(&lt) {
            expr.right = to_f64(expr.right);
        }
        Ok(PlannerResult::Original(expr))
    }
}

impl FloatSemantics {
    fn rewrite(&self, e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        match e {
            Expr::BinaryExpr(b)
                if matches!(
                    b.op,
                    Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
                ) =>
            {
                let (lt, rt) = (b.left.get_type(schema)?, b.right.get_type(schema)?);
                if !is_float(&lt) || lt != rt {
                    return Ok(Transformed::no(Expr::BinaryExpr(b)));
                }
                let f = match b.op {
                    Operator::Plus => &self.add,
                    Operator::Minus => &self.sub,
                    Operator::Multiply => &self.mul,
                    _ => &self.div,
                };
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(f.clone(), vec![*b.left, *b.right]),
                )))
            }
            Expr::Cast(c)
                if crate::types::expr_rules::is_text(c.field.data_type())
                    && is_float(&c.expr.get_type(schema)?) =>
            {
                let to = c.field.data_type().clone();
                Ok(Transformed::yes(crate::types::expr_rules::text_cast(
                    &self.text, *c.expr, to,
                )))
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

impl AnalyzerRule for FloatSemantics {
    fn name(&self) -> &str {
        "weft_float_semantics"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| self.rewrite(e, schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_as_postgresql_does() {
        assert!(checked(Operator::Divide, 1.0, 0.0, f64::INFINITY).is_err());
        assert!(checked(Operator::Multiply, 1e308, 10.0, f64::INFINITY).is_err());
        assert!(checked(Operator::Multiply, 1e-300, 1e-300, 0.0).is_err());
        assert!(checked(Operator::Plus, f64::INFINITY, 1.0, f64::INFINITY).is_ok());
        assert!(checked(Operator::Divide, 1.0, f64::INFINITY, 0.0).is_ok());
        assert!(checked(Operator::Multiply, 0.0, 5.0, 0.0).is_ok());
        assert!(checked(Operator::Plus, f64::NAN, 1.0, f64::NAN).is_ok());
    }
}

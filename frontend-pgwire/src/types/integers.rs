//! Integer arithmetic and casts to integers as PostgreSQL defines them.
//!
//! DataFusion's integer `+`, `-` and `*` wrap on overflow (`32767::int2 + 1::int2` would be
//! -32768) and its casts of floats and decimals to integers truncate (`3.7::int` would be
//! 3) or, out of range, give NULL. PostgreSQL raises 22003 ("integer out of range") and
//! rounds (a float half to even, a numeric half away from zero). A wrong number is worse
//! than an error, so:
//!
//! - [`IntegerLiterals`] (before type coercion) types an integer literal that fits 32 bits
//!   as `integer` in arithmetic and where it is selected as a column, as PostgreSQL does:
//!   `int4_col + 1` is an `integer` sum that can overflow, not a `bigint` one, and
//!   `SELECT 1` is an `integer`;
//! - [`CheckedIntegers`] (after type coercion) turns integer `+`, `-`, `*` into
//!   `weft_int_op`, which uses Arrow's checked kernels, and a cast of a float or decimal
//!   to an integer type into `weft_to_int`, which rounds as PostgreSQL does and refuses
//!   what does not fit.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type,
};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use crate::error::{codes, SqlError};

fn is_int(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    )
}

fn out_of_range(t: &DataType) -> DataFusionError {
    let name = match t {
        DataType::Int16 | DataType::Int8 => "smallint",
        DataType::Int32 => "integer",
        _ => "bigint",
    };
    DataFusionError::External(Box::new(SqlError::new(
        codes::NUMERIC_OUT_OF_RANGE,
        format!("{name} out of range"),
    )))
}

fn arithmetic(op: Operator) -> bool {
    matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
    )
}

/// Types integer literals that fit 32 bits as `integer` in arithmetic (module docs).
#[derive(Debug, Default)]
pub struct IntegerLiterals;

fn narrowed(e: Expr) -> Expr {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), m) if i32::try_from(v).is_ok() => {
            Expr::Literal(ScalarValue::Int32(Some(v as i32)), m)
        }
        other => other,
    }
}

/// Whether an array's elements are integer literals that fit 32 bits, or 32- and 16-bit
/// integers, with at least one literal to narrow.
fn narrowable_array(args: &[Expr], schema: &DFSchema) -> Result<bool> {
    let mut literal = false;
    for a in args {
        match a {
            Expr::Literal(ScalarValue::Int64(Some(v)), _) if i32::try_from(*v).is_ok() => {
                literal = true
            }
            Expr::Literal(ScalarValue::Int64(_), _) => return Ok(false),
            _ if matches!(a.get_type(schema)?, DataType::Int32 | DataType::Int16) => {}
            _ => return Ok(false),
        }
    }
    Ok(literal)
}

impl AnalyzerRule for IntegerLiterals {
    fn name(&self) -> &str {
        "weft_integer_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = selected_literals(plan)?;
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| {
            // An array of integer literals that fit 32 bits (and integer columns) is an
            // `integer[]`: `ARRAY[1, 2]`, as PostgreSQL types it.
            if let Expr::ScalarFunction(f) = &e {
                if f.name() == "make_array" && narrowable_array(&f.args, schema)? {
                    let Expr::ScalarFunction(f) = e else {
                        unreachable!("matched above")
                    };
                    let args = f.args.into_iter().map(narrowed).collect();
                    return Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(f.func, args),
                    )));
                }
            }
            let Expr::BinaryExpr(b) = e else {
                return Ok(Transformed::no(e));
            };
            let literal = |x: &Expr| matches!(x, Expr::Literal(ScalarValue::Int64(Some(_)), _));
            let narrow_side = |x: &Expr| -> Result<bool> {
                Ok(literal(x) || matches!(x.get_type(schema)?, DataType::Int32 | DataType::Int16))
            };
            if !arithmetic(b.op)
                || !(literal(&b.left) || literal(&b.right))
                || !narrow_side(&b.left)?
                || !narrow_side(&b.right)?
            {
                return Ok(Transformed::no(Expr::BinaryExpr(b)));
            }
            let (l, r) = (narrowed(*b.left), narrowed(*b.right));
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(l),
                b.op,
                Box::new(r),
            ))))
        })
    }
}

/// An integer literal selected as a column (`SELECT 1`, `SELECT 42 AS answer`) is an
/// `integer` when it fits 32 bits, as PostgreSQL types it; each keeps its name, so that
/// what refers to the column still finds it.
///
/// Not in a recursive query: its recursive term was planned with the type its first
/// term had, and narrowing that term alone would make them differ.
fn selected_literals(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::expr_rewriter::NamePreserver;
    let mut recursive = false;
    plan.apply_with_subqueries(|n| {
        recursive |= matches!(n, LogicalPlan::RecursiveQuery(_));
        Ok(if recursive {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    if recursive {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        if !matches!(node, LogicalPlan::Projection(_)) {
            // Above a narrowed column (a CTE, a derived table), the node's schema follows.
            let before = node.schema().clone();
            let node = node.recompute_schema()?;
            let changed = node.schema() != &before;
            return Ok(Transformed::new_transformed(node, changed));
        }
        let names = NamePreserver::new(&node);
        node.map_expressions(|e| {
            let literal = |e: &Expr| matches!(e, Expr::Literal(ScalarValue::Int64(Some(v)), _) if i32::try_from(*v).is_ok());
            let narrow = match &e {
                Expr::Alias(a) => literal(&a.expr),
                other => literal(other),
            };
            if !narrow {
                return Ok(Transformed::no(e));
            }
            let saved = names.save(&e);
            let out = match e {
                Expr::Alias(mut a) => {
                    a.expr = Box::new(narrowed(*a.expr));
                    Expr::Alias(a)
                }
                other => narrowed(other),
            };
            Ok(Transformed::yes(saved.restore(out)))
        })?
        .map_data(|p| p.recompute_schema())
    })
    .map(|t| t.data)
}

/// `weft_int_op(a, b, op)`: checked integer arithmetic on two values of one integer type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntOp {
    name: &'static str,
    op: u8,
    signature: Signature,
}

impl ScalarUDFImpl for IntOp {
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
        use arrow::compute::kernels::numeric::{add, mul, sub};
        let t = args.args[0].data_type();
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // Arrow's Datum: a scalar side is broadcast over the other side's rows.
        let datum = |v: &ColumnarValue| -> Result<Box<dyn arrow::array::Datum>> {
            Ok(match v {
                ColumnarValue::Array(a) => Box::new(a.clone()),
                ColumnarValue::Scalar(s) => Box::new(s.to_scalar()?),
            })
        };
        let (a, b) = (datum(&args.args[0])?, datum(&args.args[1])?);
        let out = match self.op {
            b'+' => add(a.as_ref(), b.as_ref()),
            b'-' => sub(a.as_ref(), b.as_ref()),
            _ => mul(a.as_ref(), b.as_ref()),
        }
        .map_err(|e| match e {
            arrow::error::ArrowError::ArithmeticOverflow(_) => out_of_range(&t),
            other => DataFusionError::ArrowError(Box::new(other), None),
        })?;
        Ok(if scalars {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// `weft_to_int(x, typed_null)`: a float or decimal as the second argument's integer
/// type, rounded as PostgreSQL rounds (floats half to even, decimals half away from
/// zero); out of range is 22003.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToInt {
    signature: Signature,
}

fn rounded(a: &ArrayRef) -> Result<PrimitiveArray<Float64Type>> {
    Ok(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().unary(f64::round_ties_even),
        DataType::Float32 => a
            .as_primitive::<Float32Type>()
            .unary(|v| (v as f64).round_ties_even()),
        DataType::Decimal128(_, s) if *s < 0 => {
            let m = 10f64.powi(-(*s as i32));
            a.as_primitive::<Decimal128Type>().unary(|v| v as f64 * m)
        }
        DataType::Decimal128(_, s) => {
            let p = 10i128.pow(*s as u32);
            a.as_primitive::<Decimal128Type>().unary(|v| {
                // Half away from zero, in integers, then as f64 (exact below 2^53, and
                // beyond that out of every integer type's range but bigint's edges).
                let (q, r) = (v / p, v % p);
                let q = if 2 * r.abs() >= p { q + v.signum() } else { q };
                q as f64
            })
        }
        other => return Err(DataFusionError::Internal(format!("weft_to_int of {other}"))),
    })
}

fn to_int<T: ArrowPrimitiveType>(
    r: &PrimitiveArray<Float64Type>,
    t: &DataType,
    min: f64,
    max: f64,
    conv: impl Fn(f64) -> T::Native,
) -> Result<ArrayRef> {
    let out: PrimitiveArray<T> = r
        .try_unary(|v| {
            if v.is_nan() || v < min || v > max {
                Err(arrow::error::ArrowError::ComputeError(String::new()))
            } else {
                Ok(conv(v))
            }
        })
        .map_err(|_| out_of_range(t))?;
    Ok(Arc::new(out))
}

impl ScalarUDFImpl for ToInt {
    fn name(&self) -> &str {
        "weft_to_int"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[1].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let t = args.return_field.data_type().clone();
        crate::types::expr_rules::map_values(&args.args[0], |a| {
            let r = rounded(a)?;
            Ok(match t {
                DataType::Int8 => to_int::<Int8Type>(&r, &t, -128.0, 127.0, |v| v as i8)?,
                DataType::Int16 => to_int::<Int16Type>(&r, &t, -32768.0, 32767.0, |v| v as i16)?,
                DataType::Int32 => {
                    to_int::<Int32Type>(&r, &t, -2147483648.0, 2147483647.0, |v| v as i32)?
                }
                // f64 holds i64's range only to 2^63 exclusive.
                _ => {
                    to_int::<Int64Type>(&r, &t, -9.223372036854776e18, 9.223372036854775e18, |v| {
                        v as i64
                    })?
                }
            })
        })
    }
}

/// Checked integer arithmetic and rounding casts to integers (module docs).
#[derive(Debug)]
pub struct CheckedIntegers {
    add: Arc<ScalarUDF>,
    sub: Arc<ScalarUDF>,
    mul: Arc<ScalarUDF>,
    to_int: Arc<ScalarUDF>,
}

impl Default for CheckedIntegers {
    fn default() -> Self {
        let op = |name, op| {
            Arc::new(ScalarUDF::new_from_impl(IntOp {
                name,
                op,
                signature: Signature::any(2, Volatility::Immutable),
            }))
        };
        CheckedIntegers {
            add: op("weft_int_add", b'+'),
            sub: op("weft_int_sub", b'-'),
            mul: op("weft_int_mul", b'*'),
            to_int: Arc::new(ScalarUDF::new_from_impl(ToInt {
                signature: Signature::any(2, Volatility::Immutable),
            })),
        }
    }
}

impl CheckedIntegers {
    fn rewrite(&self, e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        match e {
            Expr::BinaryExpr(b)
                if matches!(b.op, Operator::Plus | Operator::Minus | Operator::Multiply) =>
            {
                let (lt, rt) = (b.left.get_type(schema)?, b.right.get_type(schema)?);
                if !is_int(&lt) || lt != rt {
                    return Ok(Transformed::no(Expr::BinaryExpr(b)));
                }
                let f = match b.op {
                    Operator::Plus => &self.add,
                    Operator::Minus => &self.sub,
                    _ => &self.mul,
                };
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(f.clone(), vec![*b.left, *b.right]),
                )))
            }
            Expr::Cast(c) if is_int(c.field.data_type()) => {
                let from = c.expr.get_type(schema)?;
                if !matches!(
                    from,
                    DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)
                ) {
                    return Ok(Transformed::no(Expr::Cast(c)));
                }
                let typed_null = Expr::Literal(ScalarValue::try_from(c.field.data_type())?, None);
                Ok(Transformed::yes(Expr::ScalarFunction(
                    ScalarFunction::new_udf(self.to_int.clone(), vec![*c.expr, typed_null]),
                )))
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

impl AnalyzerRule for CheckedIntegers {
    fn name(&self) -> &str {
        "weft_checked_integers"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| self.rewrite(e, schema))
    }
}

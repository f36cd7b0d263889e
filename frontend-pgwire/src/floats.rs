//! `round(x)` of a float as PostgreSQL computes it: half to even (`round(2.5::float8)` is
//! 2), where DataFusion rounds half away from zero. A numeric's `round` is already
//! PostgreSQL's (half away from zero) and is left alone.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

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
        crate::expr_rules::map_values(&args.args[0], |a| {
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
        crate::expr_rules::rewrite_plan(plan, |e, schema| {
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

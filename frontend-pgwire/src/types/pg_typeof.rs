//! `pg_typeof(x)`: the PostgreSQL type of an expression, decided when the query is planned.
//!
//! The type of an expression is the same on every row, so an analyzer rule (before type
//! coercion, which would hide how an argument was written) replaces each call with the
//! type's name: PostgreSQL's `format_type` spelling (`integer`, `character varying`,
//! `timestamp with time zone`, `integer[]`). Literals are typed as PostgreSQL types them:
//! an integer literal that fits 32 bits is `integer`, a quoted string or NULL `unknown`.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;
use postgres_types::Type;

const NAME: &str = "pg_typeof";

/// The function as the SQL planner finds it; [`PgTypeof`] replaces every call.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Placeholder {
    signature: Signature,
}

impl ScalarUDFImpl for Placeholder {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(datafusion::error::DataFusionError::Internal(
            "pg_typeof is replaced when the query is planned".into(),
        ))
    }
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Placeholder {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// PostgreSQL's name for a wire type (`format_type`).
pub fn type_name(t: &Type) -> String {
    if let postgres_types::Kind::Array(elem) = t.kind() {
        return format!("{}[]", type_name(elem));
    }
    match t.name() {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "varchar" => "character varying",
        "bpchar" => "character",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "time" => "time without time zone",
        "timetz" => "time with time zone",
        other => other,
    }
    .to_string()
}

/// The name of the type of `e`, typed by `schema`.
fn type_of(e: &Expr, schema: &DFSchema) -> Result<String> {
    let literal = match e {
        Expr::Negative(inner) => inner.as_ref(),
        other => other,
    };
    match literal {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) if i32::try_from(*v).is_ok() => {
            return Ok("integer".into())
        }
        Expr::Literal(
            ScalarValue::Utf8(_) | ScalarValue::LargeUtf8(_) | ScalarValue::Utf8View(_),
            None,
        )
        | Expr::Literal(ScalarValue::Null, _) => return Ok("unknown".into()),
        _ => {}
    }
    let (_, field) = e.to_field(schema)?;
    Ok(crate::types::column_type::pg_type_of(&field)
        .map(|t| type_name(&t))
        .unwrap_or_else(|_| "unknown".into()))
}

#[derive(Debug, Default)]
pub struct PgTypeof;

impl AnalyzerRule for PgTypeof {
    fn name(&self) -> &str {
        "weft_pg_typeof"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| match e {
            Expr::ScalarFunction(ScalarFunction { ref func, ref args })
                if func.name() == NAME && args.len() == 1 =>
            {
                let ty = type_of(&args[0], schema)?;
                Ok(Transformed::yes(Expr::Literal(
                    ScalarValue::Utf8(Some(ty)),
                    None,
                )))
            }
            e => Ok(Transformed::no(e)),
        })
    }
}

/// The rule, for the session state.
pub fn rule() -> Arc<dyn AnalyzerRule + Send + Sync> {
    Arc::new(PgTypeof)
}

//! jsonb's operators and casts in plans.
//!
//! - [`JsonOperators`], an expression planner, turns `->`, `->>`, `#>`, `#>>`, `?`, `?|`,
//!   `?&` and `#-` into calls of [`super::udfs`]; `@>` and `<@` when neither side is an
//!   array (those stay array containment); `||` when one side is json and the other json
//!   or an untyped literal (text `||` stays concatenation); `-` when the left side is json.
//! - [`JsonCasts`], an analyzer rule, makes `x::jsonb` read `x` with jsonb's input function
//!   (`'{"b":1,"a":2}'::jsonb` is `{"a": 2, "b": 1}`), and `x::json` check it is JSON.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, ScalarUDF};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::BinaryOperator as B;
use weft_engine::types::PG_TYPE_KEY;

/// The json type an expression has (`json` or `jsonb`), if any.
fn json_type(e: &Expr, schema: &DFSchema) -> Option<String> {
    let (_, field) = e.to_field(schema).ok()?;
    field
        .metadata()
        .get(PG_TYPE_KEY)
        .filter(|t| matches!(t.as_str(), "json" | "jsonb"))
        .cloned()
}

fn is_untyped_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::Utf8View(_), _)
    )
}

fn is_list(e: &Expr, schema: &DFSchema) -> bool {
    matches!(
        e.get_type(schema),
        Ok(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..))
    )
}

fn udfs() -> HashMap<&'static str, Arc<ScalarUDF>> {
    super::udfs::registered()
        .into_iter()
        .map(|f| {
            let name: &'static str = Box::leak(f.name().to_string().into_boxed_str());
            (name, f)
        })
        .collect()
}

/// Plans jsonb's operators (module docs).
#[derive(Debug)]
pub struct JsonOperators {
    udfs: HashMap<&'static str, Arc<ScalarUDF>>,
}

impl Default for JsonOperators {
    fn default() -> Self {
        JsonOperators { udfs: udfs() }
    }
}

impl JsonOperators {
    fn function(&self, e: &RawBinaryExpr, schema: &DFSchema) -> Option<&'static str> {
        let (l, r) = (&e.left, &e.right);
        let json = |x: &Expr| json_type(x, schema).is_some();
        Some(match e.op {
            B::Arrow => "weft_jsonb_get",
            B::LongArrow => "weft_jsonb_get_text",
            B::HashArrow => "weft_jsonb_path",
            B::HashLongArrow => "weft_jsonb_path_text",
            B::Question => "weft_jsonb_exists",
            B::QuestionPipe => "weft_jsonb_exists_any",
            B::QuestionAnd => "weft_jsonb_exists_all",
            B::HashMinus => "weft_jsonb_delete_path",
            B::AtArrow if !is_list(l, schema) && !is_list(r, schema) => "weft_jsonb_contains",
            B::ArrowAt if !is_list(l, schema) && !is_list(r, schema) => "weft_jsonb_contained",
            B::StringConcat
                if (json(l) && (json(r) || is_untyped_literal(r)))
                    || (json(r) && is_untyped_literal(l)) =>
            {
                "weft_jsonb_concat"
            }
            B::Minus if json(l) => "weft_jsonb_delete",
            _ => return None,
        })
    }
}

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let Some(name) = self.function(&expr, schema) else {
            return Ok(PlannerResult::Original(expr));
        };
        let f = self.udfs[name].clone();
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(f, vec![expr.left, expr.right]),
        )))
    }
}

/// Reads `x::jsonb` and `x::json` with their input functions (module docs).
#[derive(Debug)]
pub struct JsonCasts {
    udfs: HashMap<&'static str, Arc<ScalarUDF>>,
}

impl Default for JsonCasts {
    fn default() -> Self {
        JsonCasts { udfs: udfs() }
    }
}

impl AnalyzerRule for JsonCasts {
    fn name(&self) -> &str {
        "weft_json_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| {
            let Expr::Cast(c) = e else {
                return Ok(Transformed::no(e));
            };
            let target = c.field.metadata().get(PG_TYPE_KEY).cloned();
            let name = match target.as_deref() {
                Some("jsonb") => "weft_jsonb_in",
                Some("json") => "weft_json_in",
                _ => return Ok(Transformed::no(Expr::Cast(c))),
            };
            if json_type(&c.expr, schema) == target {
                return Ok(Transformed::yes(*c.expr));
            }
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(self.udfs[name].clone(), vec![*c.expr]),
            )))
        })
    }
}

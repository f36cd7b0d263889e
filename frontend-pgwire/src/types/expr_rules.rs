//! The walk every expression-rewriting analyzer rule of weft shares, and the way the
//! functions those rules plan into apply themselves to an argument.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// Rewrites the expressions of one plan node bottom-up with `f`, which sees the columns
/// they can name (the node's inputs'); each top-level expression keeps its name, so the
/// node's output schema and every reference to it stay as they were.
pub fn rewrite_node(
    plan: LogicalPlan,
    f: &impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    let mut schema = DFSchema::empty();
    for input in plan.inputs() {
        schema.merge(input.schema());
    }
    let names = NamePreserver::new(&plan);
    plan.map_expressions(|e| {
        let saved = names.save(&e);
        let out = e.transform_up(|e| f(e, &schema))?;
        Ok(if out.transformed {
            out.update_data(|e| saved.restore(e))
        } else {
            out
        })
    })
}

/// [`rewrite_node`] over every node of `plan`, subqueries included.
pub fn rewrite_plan(
    plan: LogicalPlan,
    f: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| rewrite_node(plan, &f))
        .map(|t| t.data)
}

/// Applies `f` to the values of a function's argument: a scalar stays a scalar, and an
/// array keeps its own length (not the batch's row count, from which an argument inside a
/// join can differ).
pub fn map_values(
    v: &datafusion::logical_expr::ColumnarValue,
    f: impl FnOnce(&arrow::array::ArrayRef) -> Result<arrow::array::ArrayRef>,
) -> Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    use datafusion::scalar::ScalarValue;
    match v {
        ColumnarValue::Scalar(s) => {
            let out = f(&s.to_array()?)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        }
        ColumnarValue::Array(a) => Ok(ColumnarValue::Array(f(a)?)),
    }
}

/// How many rows a function's arguments have: an array argument's length, or `None` when
/// every argument is a scalar (see [`shaped`]).
pub fn rows_of(args: &[datafusion::logical_expr::ColumnarValue]) -> Option<usize> {
    use datafusion::logical_expr::ColumnarValue;
    args.iter().find_map(|a| match a {
        ColumnarValue::Array(a) => Some(a.len()),
        ColumnarValue::Scalar(_) => None,
    })
}

/// A function's result computed as an array of `rows_of(args).unwrap_or(1)` values: an
/// array when an argument was one, else the scalar of its only row.
pub fn shaped(
    out: arrow::array::ArrayRef,
    rows: Option<usize>,
) -> Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    use datafusion::scalar::ScalarValue;
    Ok(match rows {
        Some(_) => ColumnarValue::Array(out),
        None => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
    })
}

/// Whether a cast to `t` is a cast to text.
pub fn is_text(t: &arrow::datatypes::DataType) -> bool {
    use arrow::datatypes::DataType;
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// `CAST(x AS <text type> to)` as `f(x)` (a function giving Utf8 as PostgreSQL prints the
/// type), cast on to `to` when that is another text type.
pub fn text_cast(
    f: &std::sync::Arc<datafusion::logical_expr::ScalarUDF>,
    x: Expr,
    to: arrow::datatypes::DataType,
) -> Expr {
    let text = Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        f.clone(),
        vec![x],
    ));
    if to == arrow::datatypes::DataType::Utf8 {
        text
    } else {
        Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(text), to))
    }
}

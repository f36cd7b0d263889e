//! Correlated subqueries that DataFusion cannot turn into joins, run the way PostgreSQL runs
//! a SubPlan: once per distinct set of outer values.
//!
//! DataFusion decorrelates subqueries whose correlation is an equality (`x.k = t.k`) into
//! joins; one correlated by anything else (`x.b < t.b`, as in SQLite's corpus and in many
//! reports) is left in the plan, and its physical planner rejects it. weft's query planner
//! replaces each such subquery expression with a function of the outer columns it reads.
//! For each distinct tuple of outer values the function substitutes the values into the
//! subquery's plan, plans and runs it, and caches the result for the rest of the statement.
//!
//! Semantics follow PostgreSQL: a scalar subquery yields NULL on no row and fails with
//! 21000 on more than one; `IN` / `= ANY` / `op ALL` follow three-valued logic over the rows.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DataFusionError, Result as DfResult, ScalarValue};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::expr::{Exists, InSubquery, SetComparison, SetQuantifier};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Subquery, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

use crate::error::{codes, SqlError};

/// The query planner of every weft session: DataFusion's, after the remaining subquery
/// expressions became [`SubPlan`] calls.
#[derive(Debug, Default)]
pub struct WeftQueryPlanner;

#[async_trait]
impl QueryPlanner for WeftQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let state = session.as_any().downcast_ref::<SessionState>();
        let plan = match state {
            Some(state) if has_subquery_expr(plan)? => replace_subqueries(plan.clone(), state)?,
            _ => plan.clone(),
        };
        DefaultPhysicalPlanner::default()
            .create_physical_plan(&plan, session)
            .await
    }
}

fn is_subquery_expr(e: &Expr) -> bool {
    matches!(
        e,
        Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) | Expr::SetComparison(_)
    )
}

fn has_subquery_expr(plan: &LogicalPlan) -> DfResult<bool> {
    let mut found = false;
    plan.apply(|node| {
        node.apply_expressions(|e| {
            found |= e.exists(|x| Ok(is_subquery_expr(x)))?;
            Ok(if found {
                datafusion::common::tree_node::TreeNodeRecursion::Stop
            } else {
                datafusion::common::tree_node::TreeNodeRecursion::Continue
            })
        })
    })?;
    Ok(found)
}

/// Replaces every subquery expression left in the plan (not those inside subqueries: they
/// are planned when their subquery runs) with a [`SubPlan`] call, keeping column names.
fn replace_subqueries(plan: LogicalPlan, session: &SessionState) -> DfResult<LogicalPlan> {
    plan.transform_up(|node| {
        rewrite_keeping_names(node, &mut |x| {
            if !is_subquery_expr(&x) {
                return Ok(Transformed::no(x));
            }
            Ok(Transformed::yes(subplan_call(x, session)?))
        })
    })
    .map(|t| t.data)
}

/// Rewrites every expression of one plan node bottom-up with `f`, keeping the names of the
/// node's output columns (the nodes above refer to them by name).
fn rewrite_keeping_names(
    node: LogicalPlan,
    f: &mut impl FnMut(Expr) -> DfResult<Transformed<Expr>>,
) -> DfResult<Transformed<LogicalPlan>> {
    let preserver = NamePreserver::new(&node);
    let node = node.map_expressions(|e| {
        let saved = preserver.save(&e);
        let t = e.transform_up(&mut *f)?;
        Ok(if t.transformed {
            Transformed::yes(saved.restore(t.data))
        } else {
            t
        })
    })?;
    if node.transformed {
        Ok(Transformed::yes(node.data.recompute_schema()?))
    } else {
        Ok(node)
    }
}

/// What a subquery expression asks of its subquery's rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Scalar,
    Exists { negated: bool },
    In { negated: bool },
    Compare { op: Operator, all: bool },
}

fn subplan_call(e: Expr, session: &SessionState) -> DfResult<Expr> {
    let (kind, subquery, tested) = match e {
        Expr::ScalarSubquery(s) => (Kind::Scalar, s, None),
        Expr::Exists(Exists { subquery, negated }) => (Kind::Exists { negated }, subquery, None),
        Expr::InSubquery(InSubquery {
            expr,
            subquery,
            negated,
        }) => (Kind::In { negated }, subquery, Some(*expr)),
        Expr::SetComparison(SetComparison {
            expr,
            subquery,
            op,
            quantifier,
        }) => (
            Kind::Compare {
                op,
                all: quantifier == SetQuantifier::All,
            },
            subquery,
            Some(*expr),
        ),
        other => return Ok(other),
    };
    let Subquery {
        subquery: plan,
        outer_ref_columns,
        ..
    } = subquery;
    // The outer columns the subquery reads, each once, in a fixed order.
    let mut outer: Vec<(Column, DataType)> = Vec::new();
    for r in &outer_ref_columns {
        if let Expr::OuterReferenceColumn(field, col) = r {
            if !outer.iter().any(|(c, _)| c == col) {
                outer.push((col.clone(), field.data_type().clone()));
            }
        }
    }
    let column_type = plan
        .schema()
        .fields()
        .first()
        .map(|f| f.data_type().clone())
        .unwrap_or(DataType::Null);
    let ret = match kind {
        Kind::Scalar => column_type.clone(),
        _ => DataType::Boolean,
    };
    let mut args: Vec<Expr> = Vec::new();
    args.extend(tested);
    args.extend(outer.iter().map(|(c, _)| Expr::Column(c.clone())));
    let signature = if args.is_empty() {
        Signature::nullary(Volatility::Volatile)
    } else {
        Signature::any(args.len(), Volatility::Volatile)
    };
    let udf = SubPlan {
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        signature,
        kind,
        plan,
        outer,
        ret,
        column_type,
        session: Box::new(session.clone()),
        cache: Mutex::new(HashMap::new()),
    };
    Ok(ScalarUDF::new_from_impl(udf).call(args))
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One subquery expression, evaluated per distinct tuple of outer values.
struct SubPlan {
    id: u64,
    signature: Signature,
    kind: Kind,
    plan: Arc<LogicalPlan>,
    outer: Vec<(Column, DataType)>,
    ret: DataType,
    /// The type of the subquery's (first) column.
    column_type: DataType,
    session: Box<SessionState>,
    /// The subquery's first column, per tuple of outer values.
    cache: Mutex<HashMap<Vec<ScalarValue>, Arc<Vec<ScalarValue>>>>,
}

impl std::fmt::Debug for SubPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "subplan#{}", self.id)
    }
}
impl PartialEq for SubPlan {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for SubPlan {}
impl Hash for SubPlan {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}

impl ScalarUDFImpl for SubPlan {
    fn name(&self) -> &str {
        "subplan"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.ret.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (tested, outer) = match self.kind {
            Kind::In { .. } | Kind::Compare { .. } => (arrays.first(), &arrays[1..]),
            _ => (None, &arrays[..]),
        };
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let key = outer
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<DfResult<Vec<_>>>()?;
            let values = self.rows_for(key)?;
            let tested = tested
                .map(|a| ScalarValue::try_from_array(a, row))
                .transpose()?;
            out.push(self.answer(&values, tested)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(arrow::array::new_empty_array(
                &self.ret,
            )));
        }
        let array: ArrayRef = ScalarValue::iter_to_array(out)?;
        if array.data_type() != &self.ret {
            return Ok(ColumnarValue::Array(arrow::compute::cast(
                &array, &self.ret,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

impl SubPlan {
    /// The subquery's first column for these outer values (cached for the statement).
    fn rows_for(&self, key: Vec<ScalarValue>) -> DfResult<Arc<Vec<ScalarValue>>> {
        if let Some(v) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(v.clone());
        }
        let plan = self.bind(&key)?;
        // A scalar subquery needs two rows to know it has too many; EXISTS needs one.
        let limit = match self.kind {
            Kind::Scalar => Some(2),
            Kind::Exists { .. } => Some(1),
            _ => None,
        };
        let plan = match limit {
            Some(n) => LogicalPlanBuilder::from(plan).limit(0, Some(n))?.build()?,
            None => plan,
        };
        let session = self.session.clone();
        let batches = crate::catalog::pgfuncs::block_on(async move {
            let physical = session.create_physical_plan(&plan).await?;
            datafusion::physical_plan::collect(physical, session.task_ctx()).await
        })?;
        let mut values = Vec::new();
        for b in &batches {
            if b.num_columns() == 0 {
                values.extend((0..b.num_rows()).map(|_| ScalarValue::Null));
                continue;
            }
            let col = b.column(0);
            for i in 0..col.len() {
                values.push(ScalarValue::try_from_array(col, i)?);
            }
        }
        let values = Arc::new(values);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, values.clone());
        Ok(values)
    }

    /// The subquery's plan with the outer values in place of the outer references.
    fn bind(&self, key: &[ScalarValue]) -> DfResult<LogicalPlan> {
        let value_of = |c: &Column| {
            self.outer
                .iter()
                .position(|(o, _)| o == c)
                .map(|i| key[i].clone())
        };
        self.plan
            .as_ref()
            .clone()
            .transform_up_with_subqueries(|node| {
                rewrite_keeping_names(node, &mut |x| match &x {
                    Expr::OuterReferenceColumn(_, c) => match value_of(c) {
                        Some(v) => Ok(Transformed::yes(Expr::Literal(v, None))),
                        None => Ok(Transformed::no(x)),
                    },
                    _ => Ok(Transformed::no(x)),
                })
            })
            .map(|t| t.data)
    }

    fn answer(&self, values: &[ScalarValue], tested: Option<ScalarValue>) -> DfResult<ScalarValue> {
        let boolean = |b: Option<bool>| ScalarValue::Boolean(b);
        let not = |b: Option<bool>, negated: bool| b.map(|v| v != negated);
        Ok(match &self.kind {
            Kind::Scalar => match values {
                [] => ScalarValue::try_from(&self.ret)?,
                [v] => v.clone(),
                _ => {
                    return Err(DataFusionError::External(Box::new(SqlError::new(
                        codes::CARDINALITY_VIOLATION,
                        "more than one row returned by a subquery used as an expression",
                    ))))
                }
            },
            Kind::Exists { negated } => boolean(Some(values.is_empty() == *negated)),
            Kind::In { negated } => {
                let any = self.any_all(values, tested, Operator::Eq, false)?;
                boolean(not(any, *negated))
            }
            Kind::Compare { op, all } => boolean(self.any_all(values, tested, *op, *all)?),
        })
    }

    /// `tested op ANY (values)` or `tested op ALL (values)` in three-valued logic.
    fn any_all(
        &self,
        values: &[ScalarValue],
        tested: Option<ScalarValue>,
        op: Operator,
        all: bool,
    ) -> DfResult<Option<bool>> {
        if values.is_empty() {
            return Ok(Some(all));
        }
        let tested = tested.unwrap_or(ScalarValue::Null);
        let tested = if tested.is_null() || tested.data_type() == self.column_type {
            tested
        } else {
            tested.cast_to(&self.column_type)?
        };
        let mut unknown = false;
        for v in values {
            let result = if tested.is_null() || v.is_null() {
                None
            } else {
                let ord = tested.partial_cmp(v).ok_or_else(|| {
                    DataFusionError::from(SqlError::new(
                        codes::DATATYPE_MISMATCH,
                        format!(
                            "cannot compare {} with {}",
                            tested.data_type(),
                            v.data_type()
                        ),
                    ))
                })?;
                Some(match op {
                    Operator::Eq => ord.is_eq(),
                    Operator::NotEq => !ord.is_eq(),
                    Operator::Lt => ord.is_lt(),
                    Operator::LtEq => ord.is_le(),
                    Operator::Gt => ord.is_gt(),
                    Operator::GtEq => ord.is_ge(),
                    other => {
                        return Err(DataFusionError::NotImplemented(format!(
                            "{other} ANY/ALL over a correlated subquery"
                        )))
                    }
                })
            };
            match result {
                Some(true) if !all => return Ok(Some(true)),
                Some(false) if all => return Ok(Some(false)),
                None => unknown = true,
                _ => {}
            }
        }
        Ok(if unknown { None } else { Some(all) })
    }
}

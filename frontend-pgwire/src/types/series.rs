//! `generate_series` in FROM as PostgreSQL types and names it.
//!
//! DataFusion's table function takes bigint bounds, names its column `value` and gives
//! nanosecond timestamps. PostgreSQL's `generate_series(int, int [, int])` is a column of
//! integer, the bigint form one of bigint, the time forms (`timestamp`, `timestamptz`, or
//! `date`, which PostgreSQL reads as timestamptz, with an interval step) a column of the
//! timestamp type; and the column is named after the function
//! (`SELECT generate_series FROM generate_series(1, 3)`).
//!
//! This wraps DataFusion's function: integer bounds are widened for it, a time series'
//! bounds are given to it in nanoseconds and an untyped step (`'1 day'`) is read as an
//! interval, and its column is cast to PostgreSQL's type under PostgreSQL's name. The
//! series is still generated batch by batch, never held whole. An alias names the column
//! as in PostgreSQL (`crate::sql::compat::scalar_function_aliases`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

/// The column's name, as PostgreSQL gives it.
const NAME: &str = "generate_series";

/// PostgreSQL's `generate_series` over DataFusion's.
#[derive(Debug)]
pub struct Series {
    inner: Arc<dyn TableFunctionImpl>,
}

impl Series {
    /// Registers the function on `ctx` in place of DataFusion's (which must be there).
    pub fn register(ctx: &SessionContext) {
        let Some(inner) = ctx
            .state()
            .table_functions()
            .get(NAME)
            .map(|f| Arc::clone(f.function()))
        else {
            return;
        };
        ctx.register_udtf(NAME, Arc::new(Series { inner }));
    }
}

/// The type of the series for its (constant-folded) arguments, when it is one of
/// PostgreSQL's forms weft runs; `None` leaves the call to DataFusion's errors.
fn series_type(args: &[Expr]) -> Option<DataType> {
    let types: Vec<DataType> = args
        .iter()
        .map(|e| match e {
            Expr::Literal(v, _) => Some(v.data_type()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let integer = |t: &DataType| {
        matches!(
            t,
            DataType::Null | DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
        )
    };
    match types.first()? {
        _ if types.iter().all(integer) => Some(if types.contains(&DataType::Int64) {
            DataType::Int64
        } else {
            DataType::Int32
        }),
        DataType::Date32 => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some(Arc::from("UTC")),
        )),
        // weft's timestamptz is UTC; any zone names the same instants.
        DataType::Timestamp(_, tz) => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            tz.as_ref().map(|_| Arc::from("UTC")),
        )),
        _ => None,
    }
}

/// The type DataFusion's function takes the bounds in, for a series of type `series`.
fn bound_type(first: &DataType, series: &DataType) -> DataType {
    match (first, series) {
        (DataType::Date32, _) => DataType::Date32,
        (_, DataType::Timestamp(_, tz)) => DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()),
        _ => DataType::Int64,
    }
}

/// Argument `i` as DataFusion's function takes it: bounds in `bounds`, a time series'
/// step as an interval. A literal that does not cast is left for its error.
fn for_datafusion(e: &Expr, i: usize, bounds: &DataType) -> Expr {
    let Expr::Literal(v, meta) = e else {
        return e.clone();
    };
    let want = match (i, bounds) {
        (0 | 1, _) => bounds.clone(),
        (_, DataType::Int64) => DataType::Int64,
        _ => DataType::Interval(IntervalUnit::MonthDayNano),
    };
    if v.is_null() || v.data_type() == want {
        return e.clone();
    }
    match v.cast_to(&want) {
        Ok(cast) => Expr::Literal(cast, meta.clone()),
        Err(_) => e.clone(),
    }
}

impl TableFunctionImpl for Series {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let want = series_type(exprs);
        let given: Vec<Expr> = match (&want, exprs.first()) {
            (Some(series), Some(Expr::Literal(first, _))) => {
                let bounds = bound_type(&first.data_type(), series);
                exprs
                    .iter()
                    .enumerate()
                    .map(|(i, e)| for_datafusion(e, i, &bounds))
                    .collect()
            }
            _ => exprs.to_vec(),
        };
        let inner = self
            .inner
            .call_with_args(TableFunctionArgs::new(&given, args.session()))?;
        let inner_type = inner.schema().field(0).data_type().clone();
        let schema = Arc::new(Schema::new(vec![Field::new(
            NAME,
            want.unwrap_or(inner_type),
            false,
        )]));
        Ok(Arc::new(Typed { inner, schema }))
    }
}

/// DataFusion's series, cast and renamed.
#[derive(Debug)]
struct Typed {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for Typed {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, &[], limit).await?;
        if plan.schema().fields().is_empty() {
            // No column wanted (`count(*)`): only the number of rows matters.
            return Ok(plan);
        }
        let value = Arc::new(Column::new(plan.schema().field(0).name(), 0));
        let cast = Arc::new(CastExpr::new(
            value,
            self.schema.field(0).data_type().clone(),
            None,
        ));
        Ok(Arc::new(ProjectionExec::try_new(
            vec![(
                cast as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                NAME.to_string(),
            )],
            plan,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;

    fn lit(v: ScalarValue) -> Expr {
        Expr::Literal(v, None)
    }

    #[test]
    fn integer_bounds_give_integer_unless_one_is_bigint() {
        let i4 = |n| lit(ScalarValue::Int32(Some(n)));
        let i8 = |n| lit(ScalarValue::Int64(Some(n)));
        assert_eq!(series_type(&[i4(1), i4(3)]), Some(DataType::Int32));
        assert_eq!(series_type(&[i4(1), i8(3)]), Some(DataType::Int64));
        assert_eq!(
            series_type(&[lit(ScalarValue::Null), i4(3)]),
            Some(DataType::Int32)
        );
        assert_eq!(
            series_type(&[lit(ScalarValue::Utf8(Some("x".into()))), i4(3)]),
            None
        );
        assert_eq!(for_datafusion(&i4(7), 0, &DataType::Int64), i8(7));
        assert_eq!(for_datafusion(&i4(7), 2, &DataType::Int64), i8(7));
    }

    #[test]
    fn time_series_take_nanoseconds_and_a_text_step() {
        let d = lit(ScalarValue::Date32(Some(19723)));
        let step = lit(ScalarValue::Utf8(Some("1 day".into())));
        assert_eq!(
            series_type(&[d.clone(), d, step.clone()]),
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some(Arc::from("UTC"))
            ))
        );
        let Expr::Literal(v, _) = for_datafusion(&step, 2, &DataType::Date32) else {
            panic!("a literal")
        };
        assert_eq!(
            v.data_type(),
            DataType::Interval(IntervalUnit::MonthDayNano)
        );
        let ts = lit(ScalarValue::TimestampMicrosecond(Some(1), None));
        let series = series_type(&[ts.clone(), ts.clone()]).unwrap();
        let bounds = bound_type(&DataType::Timestamp(TimeUnit::Microsecond, None), &series);
        let Expr::Literal(end, _) = for_datafusion(
            &lit(ScalarValue::Utf8(Some("1970-01-01 00:00:01".into()))),
            1,
            &bounds,
        ) else {
            panic!("a literal")
        };
        assert_eq!(
            end,
            ScalarValue::TimestampNanosecond(Some(1_000_000_000), None)
        );
        let Expr::Literal(v, _) = for_datafusion(&ts, 0, &bounds) else {
            panic!("a literal")
        };
        assert_eq!(v, ScalarValue::TimestampNanosecond(Some(1000), None));
    }
}

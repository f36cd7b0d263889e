//! json's set-returning functions in FROM: `jsonb_each`, `jsonb_each_text`,
//! `jsonb_array_elements`, `jsonb_array_elements_text`, `jsonb_object_keys` and their json
//! spellings, as table functions of constant arguments (`SELECT * FROM jsonb_each($1)`).
//! An argument that names a column of another FROM item (a lateral call) is refused with
//! 0A000; in the select list the same functions take any argument (weft's select-list rewrite, `crate::sql::jsonb_syntax`).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ColumnarValue;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::ops::as_text;
use super::udfs::json_field;
use super::value::{parse, to_text, J};
use crate::error::{codes, SqlError};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Each,
    EachText,
    Elements,
    ElementsText,
    Keys,
}

#[derive(Debug)]
struct JsonSet {
    name: &'static str,
    kind: Kind,
}

fn err(code: &'static str, msg: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(SqlError::new(code, msg)))
}

/// The value of a constant argument.
fn constant(e: &Expr, session: &dyn Session, name: &str) -> Result<ScalarValue> {
    if !e.column_refs().is_empty() || e.contains_outer() {
        return Err(err(
            codes::FEATURE_NOT_SUPPORTED,
            format!("{name}() in FROM takes a constant argument; call it in the select list to expand a column"),
        ));
    }
    let empty = DFSchema::empty();
    let physical = session.create_physical_expr(e.clone(), &empty)?;
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    match physical.evaluate(&batch)? {
        ColumnarValue::Scalar(s) => Ok(s),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0),
    }
}

impl TableFunctionImpl for JsonSet {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let [arg] = args.exprs() else {
            return Err(err(
                codes::UNDEFINED_FUNCTION,
                format!("function {} takes one argument", self.name),
            ));
        };
        let value = constant(arg, args.session(), self.name)?;
        let text = match &value {
            ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
                s.clone()
            }
            v if v.is_null() => None,
            v => Some(v.to_string()),
        };
        let j = match text {
            None => None,
            Some(t) => Some(parse(&t).map_err(DataFusionError::from)?),
        };
        let (fields, columns) = self.rows(j)?;
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

impl JsonSet {
    fn rows(&self, j: Option<J>) -> Result<(Vec<Field>, Vec<ArrayRef>)> {
        let invalid = |m: String| err(codes::INVALID_PARAMETER_VALUE, m);
        let text = |v: Vec<Option<String>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
        Ok(match self.kind {
            Kind::Each | Kind::EachText => {
                let fields = match j {
                    None => vec![],
                    Some(J::Obj(f)) => f,
                    Some(_) => {
                        return Err(invalid(format!(
                            "cannot call {} on a non-object",
                            self.name
                        )))
                    }
                };
                let keys = fields.iter().map(|(k, _)| Some(k.clone())).collect();
                let (value_field, values) = if matches!(self.kind, Kind::Each) {
                    (
                        json_field("value", self.name.starts_with("jsonb")),
                        fields.iter().map(|(_, v)| Some(to_text(v))).collect(),
                    )
                } else {
                    (
                        Field::new("value", DataType::Utf8, true),
                        fields.iter().map(|(_, v)| as_text(v)).collect(),
                    )
                };
                (
                    vec![Field::new("key", DataType::Utf8, false), value_field],
                    vec![text(keys), text(values)],
                )
            }
            Kind::Elements | Kind::ElementsText => {
                let items = match j {
                    None => vec![],
                    Some(J::Arr(items)) => items,
                    Some(J::Obj(_)) => {
                        return Err(invalid("cannot extract elements from an object".into()))
                    }
                    Some(_) => return Err(invalid("cannot extract elements from a scalar".into())),
                };
                if matches!(self.kind, Kind::Elements) {
                    (
                        vec![json_field("value", self.name.starts_with("jsonb"))],
                        vec![text(items.iter().map(|v| Some(to_text(v))).collect())],
                    )
                } else {
                    (
                        vec![Field::new("value", DataType::Utf8, true)],
                        vec![text(items.iter().map(as_text).collect())],
                    )
                }
            }
            Kind::Keys => {
                let keys = match j {
                    None => vec![],
                    Some(J::Obj(f)) => f.into_iter().map(|(k, _)| Some(k)).collect(),
                    Some(J::Arr(_)) => {
                        return Err(invalid(format!("cannot call {} on an array", self.name)))
                    }
                    Some(_) => {
                        return Err(invalid(format!("cannot call {} on a scalar", self.name)))
                    }
                };
                (
                    vec![Field::new(self.name, DataType::Utf8, false)],
                    vec![text(keys)],
                )
            }
        })
    }
}

/// Registers the table functions on `ctx`.
pub fn register(ctx: &SessionContext) {
    for (name, kind) in [
        ("jsonb_each", Kind::Each),
        ("json_each", Kind::Each),
        ("jsonb_each_text", Kind::EachText),
        ("json_each_text", Kind::EachText),
        ("jsonb_array_elements", Kind::Elements),
        ("json_array_elements", Kind::Elements),
        ("jsonb_array_elements_text", Kind::ElementsText),
        ("json_array_elements_text", Kind::ElementsText),
        ("jsonb_object_keys", Kind::Keys),
        ("json_object_keys", Kind::Keys),
    ] {
        ctx.register_udtf(name, Arc::new(JsonSet { name, kind }));
    }
}

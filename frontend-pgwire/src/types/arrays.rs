//! Arrays' text input, as PostgreSQL reads it: `{1,2,3}`, `{"a b",NULL,c}`, `{}`.
//!
//! weft's arrays are one-dimensional Arrow lists. Text becomes an array in three places,
//! all through [`from_text`]: a text literal assigned to an array column (INSERT, UPDATE,
//! COPY), an explicit cast (`'{1,2}'::int[]`, rewritten by [`ArrayCasts`] into
//! `weft_array_in`), and a text parameter bound to an array type.

use std::sync::Arc;

use arrow::array::{Array, ArrayBuilder, ArrayRef, AsArray, ListArray, StringBuilder};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use crate::error::{codes, SqlError, SqlResult};

/// The most elements one array literal may have.
pub const ARRAY_ELEMENTS_MAX: usize = 1 << 20;

/// The elements of a one-dimensional array literal; NULL elements are `None`.
pub fn parse(s: &str) -> std::result::Result<Vec<Option<String>>, String> {
    let bad = |why: &str| format!("malformed array literal: \"{s}\" ({why})");
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| bad("Array value must start with \"{\" or dimension information."))?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => item.push(
                        chars
                            .next()
                            .ok_or_else(|| bad("Unexpected end of input."))?,
                    ),
                    Some(c) => item.push(c),
                    None => return Err(bad("Unexpected end of input.")),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                match c {
                    ',' => break,
                    '{' => {
                        return Err(format!(
                            "multidimensional arrays are not supported: \"{s}\""
                        ))
                    }
                    '}' | '"' => return Err(bad("Unexpected array element.")),
                    '\\' => {
                        chars.next();
                        item.push(
                            chars
                                .next()
                                .ok_or_else(|| bad("Unexpected end of input."))?,
                        );
                    }
                    c => {
                        item.push(c);
                        chars.next();
                    }
                }
            }
            item.truncate(item.trim_end().len());
            if item.is_empty() {
                return Err(bad("Unexpected \",\" character."));
            }
        }
        out.push(if !quoted && item.eq_ignore_ascii_case("null") {
            None
        } else {
            Some(item)
        });
        if out.len() > ARRAY_ELEMENTS_MAX {
            return Err(format!(
                "array literal has more than {ARRAY_ELEMENTS_MAX} elements"
            ));
        }
        match chars.next() {
            Some(',') => continue,
            None => return Ok(out),
            Some(_) => return Err(bad("Unexpected array element.")),
        }
    }
}

/// The element field of a list type.
pub fn element(t: &DataType) -> Option<&FieldRef> {
    match t {
        DataType::List(f) => Some(f),
        _ => None,
    }
}

/// A text column read as arrays of `list`'s elements (each element through its type's
/// input: an arrow cast, or bytea's own).
pub fn from_text(text: &ArrayRef, list: &DataType) -> SqlResult<ArrayRef> {
    let elem = element(list)
        .ok_or_else(|| SqlError::internal(format!("{list} is not an array type")))?
        .clone();
    let text = arrow::compute::cast(text, &DataType::Utf8)
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let text = text.as_string::<i32>();
    let uuid = elem
        .metadata()
        .get(weft_engine::types::PG_TYPE_KEY)
        .map(String::as_str)
        == Some("uuid");
    let mut values = StringBuilder::new();
    let mut offsets = vec![0i32];
    for v in text.iter() {
        if let Some(s) = v {
            let items =
                parse(s).map_err(|m| SqlError::new(codes::INVALID_TEXT_REPRESENTATION, m))?;
            for i in items {
                match i {
                    // A uuid element in its stored form, as uuid's input reads it.
                    Some(u) if uuid => {
                        let canonical = crate::types::values::pg_uuid(&u).ok_or_else(|| {
                            SqlError::new(
                                codes::INVALID_TEXT_REPRESENTATION,
                                format!("invalid input syntax for type uuid: \"{u}\""),
                            )
                        })?;
                        values.append_value(canonical);
                    }
                    other => values.append_option(other),
                }
            }
        }
        let n = values.len() as i32;
        offsets.push(n);
    }
    let values: ArrayRef = Arc::new(values.finish());
    let values = if elem.data_type() == &DataType::Binary {
        crate::types::values::decode_bytea_column(&values)?
    } else {
        let strict = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        arrow::compute::cast_with_options(&values, elem.data_type(), &strict)
            .map_err(|e| SqlError::from(DataFusionError::ArrowError(Box::new(e), None)))?
    };
    let list = ListArray::try_new(
        elem,
        OffsetBuffer::new(offsets.into()),
        values,
        text.nulls().cloned(),
    )
    .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok(Arc::new(list))
}

const UDF_NAME: &str = "weft_array_in";

/// `weft_array_in(text, typed_null)`: the text as an array of the second argument's type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayIn {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayIn {
    fn name(&self) -> &str {
        UDF_NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[1].clone())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(
            args.arg_fields[1]
                .as_ref()
                .clone()
                .with_name(UDF_NAME)
                .with_nullable(true),
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let list = args.return_field.data_type().clone();
        // Always an array: a list scalar would lose its element field's metadata (the
        // element's PostgreSQL type, e.g. `uuid`), and with it the promised type.
        let text = args.args[0].to_array(args.number_rows)?;
        let out = from_text(&text, &list).map_err(|e| DataFusionError::External(Box::new(e)))?;
        if out.data_type() == &list {
            Ok(ColumnarValue::Array(out))
        } else {
            Ok(ColumnarValue::Array(arrow::compute::cast(&out, &list)?))
        }
    }
}

pub fn array_in_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(ArrayIn {
        signature: Signature::any(2, Volatility::Immutable),
    }))
}

/// Rewrites casts of text to an array type into `weft_array_in` (arrow would make a
/// one-element list of the whole text), and casts of an array to text into
/// `weft_array_out` (arrow would write `[1, 2]`).
#[derive(Debug)]
pub struct ArrayCasts {
    udf: Arc<ScalarUDF>,
    out: Arc<ScalarUDF>,
}

impl Default for ArrayCasts {
    fn default() -> Self {
        ArrayCasts {
            udf: array_in_udf(),
            out: crate::types::array_out::array_out_udf(),
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

impl ArrayCasts {
    fn array_in(&self, text: Expr, list: &DataType) -> Result<Expr> {
        let typed_null = Expr::Literal(ScalarValue::try_from(list)?, None);
        Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
            self.udf.clone(),
            vec![text, typed_null],
        )))
    }

    /// `xs = '{1,2}'`: a text literal compared with an array is an array.
    fn compared_literal(
        &self,
        e: Expr,
        schema: &datafusion::common::DFSchema,
    ) -> Result<Transformed<Expr>> {
        let Expr::BinaryExpr(mut b) = e else {
            return Ok(Transformed::no(e));
        };
        let literal = |x: &Expr| matches!(x, Expr::Literal(v, _) if is_text(&v.data_type()));
        let (lt, rt) = (b.left.get_type(schema)?, b.right.get_type(schema)?);
        if element(&lt).is_some() && literal(&b.right) {
            b.right = Box::new(self.array_in(*b.right, &lt)?);
        } else if element(&rt).is_some() && literal(&b.left) {
            b.left = Box::new(self.array_in(*b.left, &rt)?);
        } else {
            return Ok(Transformed::no(Expr::BinaryExpr(b)));
        }
        Ok(Transformed::yes(Expr::BinaryExpr(b)))
    }
}

impl AnalyzerRule for ArrayCasts {
    fn name(&self) -> &str {
        "weft_array_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| {
            let e = self.compared_literal(e, schema)?;
            if e.transformed {
                return Ok(e);
            }
            let Expr::Cast(c) = e.data else {
                return Ok(Transformed::no(e.data));
            };
            let to = c.field.data_type();
            let from = c.expr.get_type(schema)?;
            if element(&from).is_some() && is_text(to) {
                // An array's text is PostgreSQL's `{1,NULL}`, not Arrow's `[1, ]`.
                let out =
                    Expr::ScalarFunction(ScalarFunction::new_udf(self.out.clone(), vec![*c.expr]));
                return Ok(Transformed::yes(if to == &DataType::Utf8 {
                    out
                } else {
                    Expr::Cast(datafusion::logical_expr::Cast::new(
                        Box::new(out),
                        to.clone(),
                    ))
                }));
            }
            if element(to).is_none() || !is_text(&from) {
                return Ok(Transformed::no(Expr::Cast(c)));
            }
            let to = to.clone();
            Ok(Transformed::yes(self.array_in(*c.expr, &to)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_read_as_postgresql_reads_them() {
        assert_eq!(
            parse(r#"{a, "b c",NULL,"NULL", "q\"x" }"#).unwrap(),
            vec![
                Some("a".into()),
                Some("b c".into()),
                None,
                Some("NULL".into()),
                Some("q\"x".into())
            ]
        );
        assert_eq!(parse("{}").unwrap(), vec![]);
        assert_eq!(
            parse(" { 1 , 2 } ").unwrap(),
            vec![Some("1".into()), Some("2".into())]
        );
        for bad in ["1,2", "{1,,2}", "{1,2", "{\"a}", "{a\"b}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("{{1,2},{3,4}}")
            .unwrap_err()
            .contains("multidimensional"));
    }

    #[test]
    fn text_columns_become_lists() {
        let t: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            Some("{1,2}"),
            None,
            Some("{}"),
            Some("{NULL,3}"),
        ]));
        let list = DataType::new_list(DataType::Int32, true);
        let out = from_text(&t, &list).unwrap();
        let out = out.as_list::<i32>();
        assert_eq!(out.len(), 4);
        assert!(out.is_null(1));
        assert_eq!(out.value(0).len(), 2);
        assert_eq!(out.value(2).len(), 0);
        assert!(out.value(3).is_null(0));
        let bad: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["{1,x}"]));
        assert!(from_text(&bad, &list).is_err());
    }
}

//! The json and jsonb functions as DataFusion scalar functions, and the internal ones the
//! operators ([`super::planner`]), aggregates and set-returning functions
//! (`crate::sql::jsonb_syntax`) are planned into. Each applies a pure function of [`super::ops`]
//! row by row.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, ListBuilder, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::scalar::ScalarValue;
use weft_engine::types::PG_TYPE_KEY;

use super::ops::{self, Step};
use super::to_json::{json_text, to_j};
use super::value::{parse, to_text, write_str, J};
use crate::error::{codes, SqlError};

/// What a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Out {
    Jsonb,
    Json,
    Text,
    Bool,
    Int,
    /// A list of text (the rows of a set-returning function, unnested by the plan).
    TextList,
}

enum Val {
    J(J),
    Text(String),
    Bool(bool),
    Int(i64),
    List(Vec<Option<String>>),
}

/// One argument of one row.
struct Arg<'a> {
    v: &'a ScalarValue,
    field: &'a Field,
}

type Body = fn(&[Arg<'_>]) -> std::result::Result<Option<Val>, SqlError>;

fn invalid(msg: impl Into<String>) -> SqlError {
    SqlError::new(codes::INVALID_PARAMETER_VALUE, msg)
}

impl Arg<'_> {
    fn text(&self) -> Option<String> {
        match self.v {
            ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
                s.clone()
            }
            v if v.is_null() => None,
            v => Some(v.to_string()),
        }
    }

    /// The argument as a json value (a text argument is read as JSON).
    fn j(&self) -> std::result::Result<J, SqlError> {
        let text = self.text().unwrap_or_default();
        parse(&text)
    }

    fn int(&self) -> Option<i64> {
        match self.v {
            ScalarValue::Int8(n) => n.map(i64::from),
            ScalarValue::Int16(n) => n.map(i64::from),
            ScalarValue::Int32(n) => n.map(i64::from),
            ScalarValue::Int64(n) => *n,
            ScalarValue::UInt8(n) => n.map(i64::from),
            ScalarValue::UInt16(n) => n.map(i64::from),
            ScalarValue::UInt32(n) => n.map(i64::from),
            ScalarValue::UInt64(n) => n.and_then(|n| i64::try_from(n).ok()),
            _ => None,
        }
    }

    fn is_int(&self) -> bool {
        self.v.data_type().is_integer()
    }

    /// A text[] argument: a list, or text in PostgreSQL's array syntax (`'{a,b}'`).
    fn text_array(&self) -> std::result::Result<Vec<Option<String>>, SqlError> {
        match self.v {
            ScalarValue::List(a) => {
                let values = a.value(0);
                (0..values.len())
                    .map(|i| {
                        let v = ScalarValue::try_from_array(&values, i)
                            .map_err(|e| SqlError::internal(e.to_string()))?;
                        Ok(Arg {
                            v: &v,
                            field: self.field,
                        }
                        .text())
                    })
                    .collect()
            }
            _ => crate::types::arrays::parse(&self.text().unwrap_or_default())
                .map_err(|e| SqlError::new(codes::INVALID_TEXT_REPRESENTATION, e)),
        }
    }

    /// A path: a text[] without NULL elements.
    fn path(&self) -> std::result::Result<Vec<String>, SqlError> {
        self.text_array()?
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.ok_or_else(|| invalid(format!("path element at position {} is null", i + 1)))
            })
            .collect()
    }
}

#[derive(Debug)]
struct JsonFn {
    name: &'static str,
    signature: Signature,
    out: Out,
    /// NULL in any argument gives NULL without calling the body.
    strict: bool,
    body: Body,
}

impl PartialEq for JsonFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for JsonFn {}
impl std::hash::Hash for JsonFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

fn out_type(out: Out) -> DataType {
    match out {
        Out::Jsonb | Out::Json | Out::Text => DataType::Utf8,
        Out::Bool => DataType::Boolean,
        Out::Int => DataType::Int64,
        Out::TextList => DataType::new_list(DataType::Utf8, true),
    }
}

/// The field of a jsonb (or json) value, which the wire reports as that type.
pub fn json_field(name: &str, jsonb: bool) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata(
        [(
            PG_TYPE_KEY.to_string(),
            if jsonb { "jsonb" } else { "json" }.to_string(),
        )]
        .into(),
    )
}

fn to_array(out: Out, rows: Vec<Option<Val>>) -> Result<ArrayRef> {
    let bad = || DataFusionError::Internal("a json function returned another type".into());
    Ok(match out {
        Out::Jsonb | Out::Json | Out::Text => Arc::new(
            rows.into_iter()
                .map(|r| match r {
                    None => Ok(None),
                    Some(Val::J(j)) => Ok(Some(to_text(&j))),
                    Some(Val::Text(s)) => Ok(Some(s)),
                    Some(_) => Err(bad()),
                })
                .collect::<Result<StringArray>>()?,
        ),
        Out::Bool => Arc::new(
            rows.into_iter()
                .map(|r| match r {
                    None => Ok(None),
                    Some(Val::Bool(b)) => Ok(Some(b)),
                    Some(_) => Err(bad()),
                })
                .collect::<Result<BooleanArray>>()?,
        ),
        Out::Int => Arc::new(
            rows.into_iter()
                .map(|r| match r {
                    None => Ok(None),
                    Some(Val::Int(n)) => Ok(Some(n)),
                    Some(_) => Err(bad()),
                })
                .collect::<Result<Int64Array>>()?,
        ),
        Out::TextList => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for r in rows {
                match r {
                    None => b.append_null(),
                    Some(Val::List(items)) => {
                        for i in items {
                            b.values().append_option(i);
                        }
                        b.append(true);
                    }
                    Some(_) => return Err(bad()),
                }
            }
            Arc::new(b.finish())
        }
    })
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(out_type(self.out))
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(match self.out {
            Out::Jsonb => json_field(self.name, true),
            Out::Json => json_field(self.name, false),
            other => Field::new(self.name, out_type(other), true),
        }))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // The arrays' own length: inside a join it can differ from the batch's row count.
        let rows = args
            .args
            .iter()
            .filter_map(|a| match a {
                ColumnarValue::Array(a) => Some(a.len()),
                ColumnarValue::Scalar(_) => None,
            })
            .max()
            .unwrap_or(1);
        let mut out = Vec::with_capacity(rows);
        let mut row: Vec<ScalarValue> = Vec::with_capacity(args.args.len());
        for i in 0..rows {
            row.clear();
            for a in &args.args {
                row.push(match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(arr) => ScalarValue::try_from_array(arr, i)?,
                });
            }
            if self.strict && row.iter().any(ScalarValue::is_null) {
                out.push(None);
                continue;
            }
            let call: Vec<Arg> = row
                .iter()
                .zip(args.arg_fields.iter())
                .map(|(v, f)| Arg { v, field: f })
                .collect();
            out.push((self.body)(&call).map_err(|e| DataFusionError::External(Box::new(e)))?);
        }
        let array = to_array(self.out, out)?;
        Ok(if scalars {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
}

fn udf(name: &'static str, arity: Arity, out: Out, strict: bool, body: Body) -> ScalarUDF {
    let signature = match arity {
        Arity::Exact(n) => Signature::any(n, Volatility::Immutable),
        Arity::OneOf(ns) => Signature::one_of(
            ns.iter().map(|n| TypeSignature::Any(*n)).collect(),
            Volatility::Immutable,
        ),
        Arity::Variadic => Signature::one_of(
            vec![TypeSignature::VariadicAny, TypeSignature::Nullary],
            Volatility::Immutable,
        ),
    };
    ScalarUDF::new_from_impl(JsonFn {
        name,
        signature,
        out,
        strict,
        body,
    })
}

enum Arity {
    Exact(usize),
    OneOf(&'static [usize]),
    Variadic,
}

fn step(a: &Arg) -> Step {
    if a.is_int() {
        Step::Index(a.int().unwrap_or(0))
    } else {
        Step::Key(a.text().unwrap_or_default())
    }
}

type KeyValues<'a> = Vec<(String, &'a ScalarValue, usize)>;

fn build_object<'a>(a: &'a [Arg<'a>]) -> std::result::Result<KeyValues<'a>, SqlError> {
    if !a.len().is_multiple_of(2) {
        return Err(invalid("argument list must have even number of elements")
            .with_hint("The arguments of jsonb_build_object() must consist of alternating keys and values."));
    }
    a.chunks(2)
        .enumerate()
        .map(|(i, kv)| {
            let key = kv[0]
                .text()
                .ok_or_else(|| invalid(format!("argument {}: key must not be null", 2 * i + 1)))?;
            Ok((key, kv[1].v, 2 * i + 1))
        })
        .collect()
}

fn json_string(s: &str) -> String {
    let mut out = String::new();
    write_str(&mut out, s);
    out
}

/// The internal functions operators, casts, aggregates and set-returning functions are
/// planned into, and PostgreSQL's json and jsonb functions.
pub fn all() -> Vec<ScalarUDF> {
    use Arity::*;
    use Out::*;
    vec![
        udf("weft_jsonb_in", Exact(1), Jsonb, true, |a| {
            Ok(Some(Val::J(a[0].j()?)))
        }),
        udf("weft_json_in", Exact(1), Json, true, |a| {
            a[0].j()?;
            Ok(a[0].text().map(Val::Text))
        }),
        udf("weft_jsonb_get", Exact(2), Jsonb, true, |a| {
            Ok(ops::get(&a[0].j()?, &step(&a[1])).cloned().map(Val::J))
        }),
        udf("weft_jsonb_get_text", Exact(2), Text, true, |a| {
            Ok(ops::get(&a[0].j()?, &step(&a[1]))
                .and_then(ops::as_text)
                .map(Val::Text))
        }),
        udf("weft_jsonb_path", Exact(2), Jsonb, true, |a| {
            Ok(ops::get_path(&a[0].j()?, &a[1].path()?)
                .cloned()
                .map(Val::J))
        }),
        udf("weft_jsonb_path_text", Exact(2), Text, true, |a| {
            Ok(ops::get_path(&a[0].j()?, &a[1].path()?)
                .and_then(ops::as_text)
                .map(Val::Text))
        }),
        udf("jsonb_extract_path", Variadic, Jsonb, true, |a| {
            let path: Vec<String> = a[1..].iter().filter_map(Arg::text).collect();
            Ok(ops::get_path(&a[0].j()?, &path).cloned().map(Val::J))
        }),
        udf("jsonb_extract_path_text", Variadic, Text, true, |a| {
            let path: Vec<String> = a[1..].iter().filter_map(Arg::text).collect();
            Ok(ops::get_path(&a[0].j()?, &path)
                .and_then(ops::as_text)
                .map(Val::Text))
        }),
        udf("weft_jsonb_contains", Exact(2), Bool, true, |a| {
            Ok(Some(Val::Bool(ops::contains(&a[0].j()?, &a[1].j()?))))
        }),
        udf("weft_jsonb_contained", Exact(2), Bool, true, |a| {
            Ok(Some(Val::Bool(ops::contains(&a[1].j()?, &a[0].j()?))))
        }),
        udf("weft_jsonb_exists", Exact(2), Bool, true, |a| {
            let key = a[1].text().unwrap_or_default();
            Ok(Some(Val::Bool(ops::exists(&a[0].j()?, &key))))
        }),
        udf("weft_jsonb_exists_any", Exact(2), Bool, true, |a| {
            let v = a[0].j()?;
            let keys = a[1].text_array()?;
            Ok(Some(Val::Bool(
                keys.iter().flatten().any(|k| ops::exists(&v, k)),
            )))
        }),
        udf("weft_jsonb_exists_all", Exact(2), Bool, true, |a| {
            let v = a[0].j()?;
            let keys = a[1].text_array()?;
            Ok(Some(Val::Bool(
                keys.iter().flatten().all(|k| ops::exists(&v, k)),
            )))
        }),
        udf("weft_jsonb_concat", Exact(2), Jsonb, true, |a| {
            Ok(Some(Val::J(ops::concat(a[0].j()?, a[1].j()?))))
        }),
        udf("weft_jsonb_delete", Exact(2), Jsonb, true, |a| {
            let v = a[0].j()?;
            let out = if a[1].is_int() {
                ops::delete_index(v, a[1].int().unwrap_or(0))
            } else if matches!(a[1].v, ScalarValue::List(_)) {
                a[1].text_array()?
                    .into_iter()
                    .flatten()
                    .try_fold(v, |v, k| ops::delete_key(v, &k))
            } else {
                ops::delete_key(v, &a[1].text().unwrap_or_default())
            };
            out.map(|j| Some(Val::J(j)))
        }),
        udf("weft_jsonb_delete_path", Exact(2), Jsonb, true, |a| {
            ops::delete_path(a[0].j()?, &a[1].path()?).map(|j| Some(Val::J(j)))
        }),
        udf("jsonb_set", OneOf(&[3, 4]), Jsonb, true, |a| {
            let create = match a.get(3).map(|c| c.v) {
                Some(ScalarValue::Boolean(Some(b))) => *b,
                _ => true,
            };
            ops::set(a[0].j()?, &a[1].path()?, a[2].j()?, create).map(|j| Some(Val::J(j)))
        }),
        udf("jsonb_typeof", Exact(1), Text, true, |a| {
            Ok(Some(Val::Text(a[0].j()?.type_name().into())))
        }),
        udf("json_typeof", Exact(1), Text, true, |a| {
            Ok(Some(Val::Text(a[0].j()?.type_name().into())))
        }),
        udf("jsonb_array_length", Exact(1), Int, true, array_length),
        udf("json_array_length", Exact(1), Int, true, array_length),
        udf("jsonb_strip_nulls", Exact(1), Jsonb, true, |a| {
            Ok(Some(Val::J(ops::strip_nulls(a[0].j()?))))
        }),
        udf("jsonb_pretty", Exact(1), Text, true, |a| {
            Ok(Some(Val::Text(ops::pretty(&a[0].j()?))))
        }),
        udf("to_jsonb", Exact(1), Jsonb, true, |a| {
            Ok(Some(Val::J(to_j(a[0].v, a[0].field))))
        }),
        udf("to_json", Exact(1), Json, true, |a| {
            Ok(Some(Val::Text(json_text(a[0].v, a[0].field))))
        }),
        udf("jsonb_build_object", Variadic, Jsonb, false, |a| {
            let fields = build_object(a)?
                .into_iter()
                .map(|(k, v, i)| (k, to_j(v, a[i].field)))
                .collect();
            Ok(Some(Val::J(J::object(fields))))
        }),
        udf("json_build_object", Variadic, Json, false, |a| {
            let fields: Vec<String> = build_object(a)?
                .into_iter()
                .map(|(k, v, i)| format!("{} : {}", json_string(&k), json_or_null(v, a[i].field)))
                .collect();
            Ok(Some(Val::Text(format!("{{{}}}", fields.join(", ")))))
        }),
        udf("jsonb_build_array", Variadic, Jsonb, false, |a| {
            Ok(Some(Val::J(J::Arr(
                a.iter().map(|a| to_j(a.v, a.field)).collect(),
            ))))
        }),
        udf("json_build_array", Variadic, Json, false, |a| {
            let items: Vec<String> = a.iter().map(|a| json_or_null(a.v, a.field)).collect();
            Ok(Some(Val::Text(format!("[{}]", items.join(", ")))))
        }),
        // Aggregates: jsonb_agg(x) is weft_jsonb_of_elems(array_agg(weft_json_elem(x))).
        udf("weft_json_elem", Exact(1), Text, false, |a| {
            Ok(Some(Val::Text(json_or_null(a[0].v, a[0].field))))
        }),
        udf("weft_jsonb_of_elems", Exact(1), Jsonb, true, |a| {
            let items = elems(&a[0])?
                .into_iter()
                .map(|t| parse(&t))
                .collect::<std::result::Result<Vec<J>, SqlError>>()?;
            Ok(Some(Val::J(J::Arr(items))))
        }),
        udf("weft_json_of_elems", Exact(1), Json, true, |a| {
            Ok(Some(Val::Text(format!("[{}]", elems(&a[0])?.join(", ")))))
        }),
        udf("weft_jsonb_object_of_elems", Exact(2), Jsonb, true, |a| {
            let (keys, values) = (object_keys(&a[0])?, elems(&a[1])?);
            let fields = keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| Ok((k, parse(&v)?)))
                .collect::<std::result::Result<Vec<_>, SqlError>>()?;
            Ok(Some(Val::J(J::object(fields))))
        }),
        udf("weft_json_object_of_elems", Exact(2), Json, true, |a| {
            let (keys, values) = (object_keys(&a[0])?, elems(&a[1])?);
            let fields: Vec<String> = keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| format!("{} : {v}", json_string(&k)))
                .collect();
            Ok(Some(Val::Text(format!("{{ {} }}", fields.join(", ")))))
        }),
        // Set-returning functions: jsonb_array_elements(x) is unnest(weft_...(x)).
        udf(
            "weft_jsonb_array_elements",
            Exact(1),
            TextList,
            true,
            |a| match a[0].j()? {
                J::Arr(items) => Ok(Some(Val::List(
                    items.iter().map(|v| Some(to_text(v))).collect(),
                ))),
                J::Obj(_) => Err(invalid("cannot extract elements from an object")),
                _ => Err(invalid("cannot extract elements from a scalar")),
            },
        ),
        udf(
            "weft_jsonb_array_elements_text",
            Exact(1),
            TextList,
            true,
            |a| match a[0].j()? {
                J::Arr(items) => Ok(Some(Val::List(items.iter().map(ops::as_text).collect()))),
                J::Obj(_) => Err(invalid("cannot extract elements from an object")),
                _ => Err(invalid("cannot extract elements from a scalar")),
            },
        ),
        udf(
            "weft_jsonb_object_keys",
            Exact(1),
            TextList,
            true,
            |a| match a[0].j()? {
                J::Obj(fields) => Ok(Some(Val::List(
                    fields.into_iter().map(|(k, _)| Some(k)).collect(),
                ))),
                J::Arr(_) => Err(invalid("cannot call jsonb_object_keys on an array")),
                _ => Err(invalid("cannot call jsonb_object_keys on a scalar")),
            },
        ),
    ]
}

fn json_or_null(v: &ScalarValue, field: &Field) -> String {
    if v.is_null() {
        "null".into()
    } else {
        json_text(v, field)
    }
}

fn array_length(a: &[Arg]) -> std::result::Result<Option<Val>, SqlError> {
    match a[0].j()? {
        J::Arr(items) => Ok(Some(Val::Int(items.len() as i64))),
        J::Obj(_) => Err(invalid("cannot get array length of a non-array")),
        _ => Err(invalid("cannot get array length of a scalar")),
    }
}

/// The JSON texts an array_agg of weft_json_elem collected.
fn elems(a: &Arg) -> std::result::Result<Vec<String>, SqlError> {
    Ok(a.text_array_of_list()?
        .into_iter()
        .map(|t| t.unwrap_or_else(|| "null".into()))
        .collect())
}

/// The keys of jsonb_object_agg, none of which may be NULL.
fn object_keys(a: &Arg) -> std::result::Result<Vec<String>, SqlError> {
    a.text_array_of_list()?
        .into_iter()
        .map(|k| k.ok_or_else(|| invalid("field name must not be null")))
        .collect()
}

impl Arg<'_> {
    /// The elements of a list argument, as text.
    fn text_array_of_list(&self) -> std::result::Result<Vec<Option<String>>, SqlError> {
        match self.v {
            ScalarValue::List(_) => self.text_array(),
            _ => Err(SqlError::internal("expected a list")),
        }
    }
}

/// Every function of [`all`], shared.
pub fn registered() -> Vec<Arc<ScalarUDF>> {
    all().into_iter().map(Arc::new).collect()
}

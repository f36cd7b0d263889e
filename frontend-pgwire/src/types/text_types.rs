//! Types weft stores as text but PostgreSQL compares by value, in expressions.
//!
//! - `character(n)`: values are stored without trailing blanks, which is what PostgreSQL's
//!   bpchar comparisons, grouping, ordering, `length()` and casts to text see. A text
//!   literal compared with such a column loses its trailing blanks too (`c = 'bb '` finds
//!   `'bb'`). LIKE is the exception: PostgreSQL matches the blank-padded value
//!   (`'ASIA'::char(25) LIKE '%A'` is false), so the column is padded to its length there.
//! - `uuid`: stored lower-case and hyphenated; a literal compared with a uuid column is
//!   brought to that form (`u = 'A0EEBC99...'` finds it), and so is an explicit cast of a
//!   text literal (`'{A0EEBC99...}'::uuid`), which refuses what is not a uuid (22P02).
//!
//! - `bytea`: an explicit cast of a text literal (`'\x4142'::bytea`, `CAST('a\\b' AS
//!   bytea)`) reads the literal in PostgreSQL's bytea input syntax (hex or escape), as an
//!   untyped literal stored into a bytea column is; DataFusion would take its UTF-8 bytes.
//!
//!   `length(bytea)` counts bytes, as in PostgreSQL (DataFusion would read them as text).
//!
//! - `varchar(n)`: an explicit cast keeps the first n characters (`'abcdef'::varchar(3)` is
//!   `abc`), as PostgreSQL's does; the cast's type carries n until this rule applies it.
//!
//! - `timestamp`: a literal whose time has no seconds (`'2024-01-01 12:00'::timestamp`)
//!   gets `:00`, as PostgreSQL reads it (Arrow's parser wants seconds).
//!
//! One analyzer rule does all of this, keeping every expression's name.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ExprSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::{lit, Expr, LogicalPlan};
use datafusion::logical_expr::{BinaryExpr, Operator};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;
use weft_engine::types::{CHAR_LENGTH_KEY, PG_TYPE_KEY};
use weft_engine::SqlType;

/// Field metadata on a cast to `varchar(n)`: n, which [`TextTypeSemantics`] applies (and
/// then removes).
pub const CAST_LENGTH_KEY: &str = "weft.cast_length";

#[derive(Debug, Default)]
pub struct TextTypeSemantics;

impl AnalyzerRule for TextTypeSemantics {
    fn name(&self) -> &str {
        "weft_text_type_semantics"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        crate::types::expr_rules::rewrite_plan(plan, |e, schema| {
            pad_like_subject(e, schema)?
                .transform_data(|e| canonical_literals(e, schema))?
                .transform_data(bytea_literal)?
                .transform_data(uuid_literal)?
                .transform_data(|e| varchar_length(e, schema))?
                .transform_data(timestamp_literal)?
                .transform_data(|e| bytea_length(e, schema))
        })
    }
}

fn pad_like_subject(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Like(like) = e else {
        return Ok(Transformed::no(e));
    };
    let Expr::Column(col) = like.expr.as_ref() else {
        return Ok(Transformed::no(Expr::Like(like)));
    };
    let width = schema
        .field_from_column(col)
        .ok()
        .and_then(|f| f.metadata().get(CHAR_LENGTH_KEY))
        .and_then(|n| n.parse::<i64>().ok());
    let Some(width) = width else {
        return Ok(Transformed::no(Expr::Like(like)));
    };
    let padded =
        datafusion::functions::unicode::expr_fn::rpad(vec![like.expr.as_ref().clone(), lit(width)]);
    Ok(Transformed::yes(Expr::Like(Like {
        expr: Box::new(padded),
        ..like
    })))
}

/// The weft type of a column stored as text whose literals need bringing to stored form.
fn text_type_of(e: &Expr, schema: &DFSchema) -> Option<SqlType> {
    let Expr::Column(col) = e else { return None };
    let field = schema.field_from_column(col).ok()?;
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("bpchar") => Some(SqlType::Char { chars: 1 }),
        Some("uuid") => Some(SqlType::Uuid),
        Some("jsonb") => Some(SqlType::Jsonb),
        _ => None,
    }
}

/// `e` as its stored form for a column of `ty`, when `e` is a text literal (possibly cast
/// to text) that needs it.
fn canonical_literal(e: &Expr, ty: &SqlType) -> Option<Expr> {
    let inner = match e {
        Expr::Cast(c) => c.expr.as_ref(),
        other => other,
    };
    let Expr::Literal(v, _) = inner else {
        return None;
    };
    let s = match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s,
        _ => return None,
    };
    crate::types::values::canonical_text(ty, s).map(lit)
}

fn canonical_literals(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::BinaryExpr(b)
            if matches!(
                b.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) =>
        {
            if let Some(ty) = text_type_of(&b.left, schema) {
                if let Some(r) = canonical_literal(&b.right, &ty) {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        right: Box::new(r),
                        ..b
                    })));
                }
            }
            if let Some(ty) = text_type_of(&b.right, schema) {
                if let Some(l) = canonical_literal(&b.left, &ty) {
                    return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left: Box::new(l),
                        ..b
                    })));
                }
            }
            Ok(Transformed::no(Expr::BinaryExpr(b)))
        }
        Expr::InList(mut l) => {
            let Some(ty) = text_type_of(&l.expr, schema) else {
                return Ok(Transformed::no(Expr::InList(l)));
            };
            let mut changed = false;
            for item in l.list.iter_mut() {
                if let Some(c) = canonical_literal(item, &ty) {
                    *item = c;
                    changed = true;
                }
            }
            Ok(if changed {
                Transformed::yes(Expr::InList(l))
            } else {
                Transformed::no(Expr::InList(l))
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `CAST('<bytea input>' AS bytea)` as the bytes PostgreSQL's bytea input reads.
fn bytea_literal(e: Expr) -> Result<Transformed<Expr>> {
    use arrow::datatypes::DataType;
    let Expr::Cast(c) = &e else {
        return Ok(Transformed::no(e));
    };
    if !matches!(
        c.field.data_type(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    ) {
        return Ok(Transformed::no(e));
    }
    let Expr::Literal(v, _) = c.expr.as_ref() else {
        return Ok(Transformed::no(e));
    };
    let s = match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s,
        _ => return Ok(Transformed::no(e)),
    };
    let bytes = crate::types::values::decode_bytea(s)
        .map_err(|err| datafusion::error::DataFusionError::External(Box::new(err)))?;
    let value = match c.field.data_type() {
        DataType::LargeBinary => ScalarValue::LargeBinary(Some(bytes)),
        DataType::BinaryView => ScalarValue::BinaryView(Some(bytes)),
        _ => ScalarValue::Binary(Some(bytes)),
    };
    Ok(Transformed::yes(lit(value)))
}

/// `CAST(x AS varchar(n))`: the first n characters of x as text.
fn varchar_length(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    use arrow::datatypes::DataType;
    use datafusion::logical_expr::ExprSchemable;
    let Expr::Cast(mut c) = e else {
        return Ok(Transformed::no(e));
    };
    let Some(n) = c
        .field
        .metadata()
        .get(CAST_LENGTH_KEY)
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return Ok(Transformed::no(Expr::Cast(c)));
    };
    let inner = *c.expr;
    let text = match inner.get_type(schema)? {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => inner,
        _ => Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(inner),
            DataType::Utf8,
        )),
    };
    c.expr = Box::new(datafusion::functions::unicode::expr_fn::left(text, lit(n)));
    let mut md = c.field.metadata().clone();
    md.remove(CAST_LENGTH_KEY);
    c.field = std::sync::Arc::new(c.field.as_ref().clone().with_metadata(md));
    Ok(Transformed::yes(Expr::Cast(c)))
}

/// `CAST('<uuid input>' AS uuid)` in the stored form, or 22P02 for what is not a uuid.
fn uuid_literal(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::Cast(mut c) = e else {
        return Ok(Transformed::no(e));
    };
    if c.field.metadata().get(PG_TYPE_KEY).map(String::as_str) != Some("uuid") {
        return Ok(Transformed::no(Expr::Cast(c)));
    }
    let Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) =
        c.expr.as_ref()
    else {
        return Ok(Transformed::no(Expr::Cast(c)));
    };
    match crate::types::values::pg_uuid(s) {
        Some(u) if u == *s => Ok(Transformed::no(Expr::Cast(c))),
        Some(u) => {
            c.expr = Box::new(lit(u));
            Ok(Transformed::yes(Expr::Cast(c)))
        }
        None => Err(datafusion::error::DataFusionError::External(Box::new(
            crate::error::SqlError::new(
                crate::error::codes::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type uuid: \"{s}\""),
            ),
        ))),
    }
}

/// `CAST('2024-01-01 12:00' AS timestamp)`: a time without seconds, as PostgreSQL reads it.
fn timestamp_literal(e: Expr) -> Result<Transformed<Expr>> {
    use arrow::datatypes::DataType;
    let Expr::Cast(c) = e else {
        return Ok(Transformed::no(e));
    };
    if !matches!(c.field.data_type(), DataType::Timestamp(..)) {
        return Ok(Transformed::no(Expr::Cast(c)));
    }
    let fixed = match c.expr.as_ref() {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) => {
            crate::types::values::timestamp_with_seconds(s)
        }
        _ => None,
    };
    match fixed {
        Some(s) => Ok(Transformed::yes(Expr::Cast(
            datafusion::logical_expr::Cast {
                expr: Box::new(lit(s)),
                field: c.field,
            },
        ))),
        None => Ok(Transformed::no(Expr::Cast(c))),
    }
}

/// `length(b)` of a bytea: its byte count.
fn bytea_length(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    use arrow::datatypes::DataType;
    use datafusion::logical_expr::ExprSchemable;
    let Expr::ScalarFunction(f) = &e else {
        return Ok(Transformed::no(e));
    };
    if f.args.len() != 1 || !matches!(f.name(), "character_length" | "length" | "char_length") {
        return Ok(Transformed::no(e));
    }
    // Type coercion has already wrapped a bytea argument in a cast to text.
    let arg = match &f.args[0] {
        Expr::Cast(c) => c.expr.as_ref(),
        a => a,
    };
    let binary = matches!(
        arg.get_type(schema)?,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    );
    if !binary {
        return Ok(Transformed::no(e));
    }
    // DataFusion's octet_length takes only text: count the bytes as half the hex digits.
    let hex = datafusion::functions::encoding::expr_fn::encode(arg.clone(), lit("hex"));
    let bytes = datafusion::functions::string::expr_fn::octet_length(hex) / lit(2i32);
    Ok(Transformed::yes(bytes))
}

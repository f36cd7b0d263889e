//! Building a catalog table from rows: column kinds, values, and the Arrow batch.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};

#[derive(Clone, Copy)]
pub(crate) enum K {
    /// An object id (int4 on the wire as `oid`).
    Oid,
    Text,
    /// PostgreSQL's one-byte `"char"`.
    Char,
    Bool,
    I16,
    I32,
    I64,
    F32,
    TextList,
    /// int2vector / int2[] (index and constraint keys).
    I16List,
    /// oidvector (an index's operator classes and collations): a list of oids that goes
    /// on the wire as PostgreSQL's `oidvector`, `1 2 3` in text.
    OidList,
    /// int2vector (an index's columns and options), likewise.
    Int2Vector,
}

pub(crate) enum V {
    N,
    S(String),
    I(i64),
    B(bool),
    F(f64),
    IL(Vec<i16>),
    OL(Vec<i32>),
    /// A text[] (ACLs).
    TL(Vec<String>),
}

pub(crate) fn s(v: impl Into<String>) -> V {
    V::S(v.into())
}
pub(crate) fn i(v: impl Into<i64>) -> V {
    V::I(v.into())
}

pub(crate) fn field(name: &str, k: K) -> Field {
    let f = |dt| Field::new(name, dt, true);
    match k {
        K::Oid => f(DataType::Int32).with_metadata(HashMap::from([(
            arrow_pg::datatypes::PG_OID_ALIAS_KEY.to_string(),
            "oid".to_string(),
        )])),
        K::Text => f(DataType::Utf8),
        K::Char => f(DataType::Utf8).with_metadata(HashMap::from([(
            arrow_pg::datatypes::PG_CHAR_KEY.to_string(),
            "char".to_string(),
        )])),
        K::Bool => f(DataType::Boolean),
        K::I16 => f(DataType::Int16),
        K::I32 => f(DataType::Int32),
        K::I64 => f(DataType::Int64),
        K::F32 => f(DataType::Float32),
        K::TextList => f(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            true,
        )))),
        K::I16List => f(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Int16,
            true,
        )))),
        K::OidList => f(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Int32,
            true,
        ))))
        .with_metadata(HashMap::from([(
            weft_engine::types::PG_TYPE_KEY.to_string(),
            "oidvector".to_string(),
        )])),
        K::Int2Vector => f(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Int16,
            true,
        ))))
        .with_metadata(HashMap::from([(
            weft_engine::types::PG_TYPE_KEY.to_string(),
            "int2vector".to_string(),
        )])),
    }
}

pub(crate) fn build(cols: &[(&str, K)], rows: Vec<Vec<V>>) -> DfResult<Arc<dyn TableProvider>> {
    use datafusion::scalar::ScalarValue as S;
    let schema: SchemaRef = Arc::new(Schema::new(
        cols.iter().map(|(n, k)| field(n, *k)).collect::<Vec<_>>(),
    ));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for (c, (name, k)) in cols.iter().enumerate() {
        let bad = || DataFusionError::Internal(format!("catalog column {name} has a bad value"));
        // Each cell as a value of the column's type; NULL is a typed NULL.
        let cells = rows.iter().map(|r| {
            let v = r.get(c).ok_or_else(|| {
                DataFusionError::Internal(format!("catalog row is missing column {name}"))
            })?;
            Ok(match (k, v) {
                (K::Oid | K::I32, V::I(x)) => S::Int32(Some(*x as i32)),
                (K::I16, V::I(x)) => S::Int16(Some(*x as i16)),
                (K::I64, V::I(x)) => S::Int64(Some(*x)),
                (K::F32, V::F(x)) => S::Float32(Some(*x as f32)),
                (K::Bool, V::B(x)) => S::Boolean(Some(*x)),
                (K::Text | K::Char, V::S(x)) => S::Utf8(Some(x.clone())),
                (K::I16List | K::Int2Vector, V::IL(xs)) => S::List(S::new_list_nullable(
                    &xs.iter().map(|x| S::Int16(Some(*x))).collect::<Vec<_>>(),
                    &DataType::Int16,
                )),
                (K::TextList, V::TL(xs)) => S::List(S::new_list_nullable(
                    &xs.iter()
                        .map(|x| S::Utf8(Some(x.clone())))
                        .collect::<Vec<_>>(),
                    &DataType::Utf8,
                )),
                (K::OidList, V::OL(xs)) => S::List(S::new_list_nullable(
                    &xs.iter().map(|x| S::Int32(Some(*x))).collect::<Vec<_>>(),
                    &DataType::Int32,
                )),
                (_, V::N) => S::try_from(field(name, *k).data_type())?,
                _ => return Err(bad()),
            })
        });
        let values = cells.collect::<DfResult<Vec<S>>>()?;
        let array = if values.is_empty() {
            arrow::array::new_empty_array(field(name, *k).data_type())
        } else {
            S::iter_to_array(values)?
        };
        arrays.push(array);
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

// ------------------------------------------------------------------ pg_catalog

//! COPY FROM's direct path: parsed records become Arrow columns of the table's types in one
//! pass per column, then rows checked and written exactly as INSERT writes them (NOT NULL,
//! lengths, uuid and jsonb forms, primary-key uniqueness), without building, parsing and
//! planning an INSERT statement per chunk.
//!
//! It applies when every column the COPY leaves out has no default (so it is NULL); a COPY
//! that needs defaults evaluated (a SERIAL key left out) takes the INSERT path.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, RecordBatchOptions, StringArray};
use arrow::datatypes::Schema;
use weft_engine::schema::TableDef;
use weft_engine::SqlType;

use crate::catalog::db::Db;
use crate::error::{SqlError, SqlResult};
use crate::sql::copy_chunk::{ReadyChunk, Readying};
use crate::sql::copy_fields::RecordColumns;
use crate::sql::exec::{row_key, Executor};
use crate::sql::row_write::check_constraints;

/// Where each table column comes from in the COPY's records, or `None` when the COPY
/// cannot take the direct path (a left-out column has a default to evaluate).
pub fn column_sources(def: &TableDef, copy_columns: &[String]) -> Option<Vec<Option<usize>>> {
    def.columns
        .iter()
        .map(|c| match copy_columns.iter().position(|n| *n == c.name) {
            Some(i) => Some(Some(i)),
            None if c.default.is_none() && c.identity.is_none() => Some(None),
            None => None,
        })
        .collect()
}

/// One column of text fields as the column's type, read as that type's input reads it.
fn typed_column(text: ArrayRef, ty: &SqlType) -> SqlResult<ArrayRef> {
    let want = ty.arrow_type();
    if text.data_type() == &want {
        return Ok(text);
    }
    match ty {
        SqlType::Bytea => crate::types::values::decode_bytea_column(&text),
        SqlType::Timestamp | SqlType::Timestamptz => {
            // A time without seconds, as PostgreSQL reads it.
            use arrow::array::AsArray;
            let fixed: StringArray = text
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|s| {
                        crate::types::values::timestamp_with_seconds(s).unwrap_or(s.to_string())
                    })
                })
                .collect();
            strict_cast(&(Arc::new(fixed) as ArrayRef), &want)
        }
        SqlType::Array(_) => crate::types::arrays::from_text(&text, &want),
        SqlType::Numeric { precision, scale } => {
            let plain = text.as_any().downcast_ref::<StringArray>().and_then(|t| {
                crate::types::numeric_input::plain_decimal_column(t, *precision, *scale)
            });
            match plain {
                Some(column) => Ok(Arc::new(column)),
                None => strict_cast(&text, &want),
            }
        }
        _ => strict_cast(&text, &want),
    }
}

/// Arrow's cast that fails on a value it cannot read (its default makes it NULL).
fn strict_cast(text: &ArrayRef, want: &arrow::datatypes::DataType) -> SqlResult<ArrayRef> {
    let strict = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(text, want, &strict).map_err(|e| {
        SqlError::from(datafusion::error::DataFusionError::ArrowError(
            Box::new(e),
            None,
        ))
    })
}

/// The records as a batch of the table's columns, in the table's types.
pub fn records_batch(
    def: &TableDef,
    sources: &[Option<usize>],
    records: &RecordColumns,
) -> SqlResult<RecordBatch> {
    let n = records.rows;
    let mut columns = Vec::with_capacity(def.columns.len());
    for (c, src) in def.columns.iter().zip(sources) {
        let column: ArrayRef = match src {
            Some(i) => typed_column(records.columns[*i].clone(), &c.ty)?,
            None => new_null_array(&c.ty.arrow_type(), n),
        };
        columns.push(column);
    }
    let schema = Arc::new(Schema::new(
        def.arrow_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| SqlError::internal(e.to_string()))
}

impl ReadyChunk {
    /// The work on a chunk that needs no snapshot, for the table `def`; `None` when the
    /// COPY must take the INSERT path (a left-out column has a default).
    pub async fn make(
        db: &Db,
        def: Arc<TableDef>,
        copy_columns: &[String],
        records: &RecordColumns,
    ) -> SqlResult<Option<ReadyChunk>> {
        let Some(sources) = column_sources(&def, copy_columns) else {
            return Ok(None);
        };
        let batch = records_batch(&def, &sources, records)?;
        let rows = Executor::batches_to_rows(&def, &[batch])?;
        check_constraints(db, &def, &rows.iter().collect::<Vec<_>>()).await?;
        let keys = rows
            .iter()
            .map(|r| row_key(db, &def, r))
            .collect::<SqlResult<Vec<_>>>()?;
        Ok(Some(ReadyChunk { def, rows, keys }))
    }
}

impl Readying {
    /// Starts making `part` ready. It runs on the blocking pool: a task spawned from the
    /// session's would wait in the same worker's queue until the session yields.
    pub fn start(
        db: Arc<Db>,
        def: Arc<TableDef>,
        copy_columns: Vec<String>,
        part: RecordColumns,
    ) -> Readying {
        let (d, p) = (def.clone(), part.clone());
        Readying::spawn(def, part, async move {
            ReadyChunk::make(&db, d, &copy_columns, &p).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;
    use weft_engine::ColumnDef;

    fn col(name: &str, ty: SqlType, default: Option<&str>) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            nullable: true,
            default: default.map(str::to_string),
            identity: None,
            comment: None,
        }
    }

    fn table(columns: Vec<ColumnDef>, primary_key: Vec<usize>) -> TableDef {
        TableDef {
            id: 100,
            name: "t".into(),
            columns,
            primary_key,
            oid: 0,
            indexes: vec![],
            checks: vec![],
            foreign_keys: vec![],
            referenced_by: vec![],
            comment: None,
            pkey_name: None,
            owner: None,
            acl: None,
        }
    }

    #[test]
    fn left_out_columns_with_defaults_take_the_insert_path() {
        let def = table(
            vec![
                col("id", SqlType::Integer, Some("nextval('t_id_seq')")),
                col("v", SqlType::Text, None),
            ],
            vec![0],
        );
        assert_eq!(
            column_sources(&def, &["id".into(), "v".into()]),
            Some(vec![Some(0), Some(1)])
        );
        assert_eq!(
            column_sources(&def, &["v".into(), "id".into()]),
            Some(vec![Some(1), Some(0)])
        );
        assert_eq!(
            column_sources(&def, &["id".into()]),
            Some(vec![Some(0), None])
        );
        assert_eq!(column_sources(&def, &["v".into()]), None);
    }

    #[test]
    fn fields_are_read_by_their_types_input() {
        let def = table(
            vec![
                col("i", SqlType::Integer, None),
                col("b", SqlType::Bytea, None),
                col("a", SqlType::Array(Box::new(SqlType::Integer)), None),
                col("n", SqlType::Text, None),
            ],
            vec![],
        );
        let records = RecordColumns::from_rows(
            3,
            &[
                vec![Some("1"), Some("\\x4142"), Some("{1,2}")],
                vec![None, None, None],
            ],
        );
        let batch = records_batch(&def, &[Some(0), Some(1), Some(2), None], &records).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(1).data_type(), &DataType::Binary);
        assert_eq!(batch.column(3).null_count(), 2);
        let bad = RecordColumns::from_rows(3, &[vec![Some("x"), None, None]]);
        assert!(records_batch(&def, &[Some(0), Some(1), Some(2), None], &bad).is_err());
    }
}

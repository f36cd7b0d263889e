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

use crate::catalog::txn::Txn;
use crate::error::{SqlError, SqlResult};
use crate::sql::copy::CopyIn;
use crate::sql::copy_fields::RecordColumns;
use crate::sql::exec::Executor;

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

impl Executor {
    /// COPY's records written directly; `false` when the COPY must take the INSERT path.
    pub async fn copy_rows_direct(
        &self,
        txn: &mut Txn,
        copy: &mut CopyIn,
        records: &RecordColumns,
    ) -> SqlResult<bool> {
        let def = self.table_def(txn, &copy.table).await?;
        let Some(sources) = column_sources(&def, &copy.columns) else {
            return Ok(false);
        };
        txn.schema_keys
            .insert(weft_engine::key::catalog_key(&def.name));
        let batch = records_batch(&def, &sources, records)?;
        let rows = Self::batches_to_rows(&def, &[batch])?;
        let n = rows.len();
        let schema = def.arrow_schema();
        self.check_constraints(&def, &rows.iter().collect::<Vec<_>>())
            .await?;
        let keys = rows
            .iter()
            .map(|r| self.row_key(&def, r))
            .collect::<SqlResult<Vec<_>>>()?;
        // The stored rows of every key, looked up at once; the transaction's own writes
        // (earlier chunks, earlier records of this one) are looked at record by record.
        let stored = if def.primary_key.is_empty() {
            vec![None; keys.len()]
        } else {
            self.current_many(txn, def.id, &keys).await?
        };
        for ((row, key), stored) in rows.into_iter().zip(keys).zip(stored) {
            let taken = match txn.own_write(def.id, &key) {
                Some(own) => own.is_some(),
                None => stored.is_some(),
            };
            if taken && !def.primary_key.is_empty() {
                return Err(Self::pk_violation(&def, &row));
            }
            self.write_row(txn, &def, &schema, key, Some(Arc::new(row)))
                .await?;
        }
        copy.count += n;
        copy.uncommitted += n;
        Ok(true)
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

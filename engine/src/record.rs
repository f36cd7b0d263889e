//! The commit record: what one transaction wrote, stamped with its commit timestamp.
//!
//! It flows frontend → adjudicator → journal (encoded as Arrow IPC inside the journal
//! object) → crossbar → storage nodes.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, RecordBatch, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{EngineError, EngineResult};
use crate::row::{batch_rows, column_from_rows, Row};
use crate::schema::KEY_COLUMN;
use crate::time::Timestamp;

/// Column of the op code in journal batches and segments.
pub const OP_COLUMN: &str = "_weft_op";
pub const OP_PUT: u8 = 0;
pub const OP_DELETE: u8 = 1;

/// The writes of one transaction to one table. `rows[i]` is `None` for a delete of `keys[i]`.
#[derive(Debug, Clone)]
pub struct TableWrites {
    pub table_id: u64,
    /// The table's column schema when the transaction wrote it.
    pub schema: SchemaRef,
    pub keys: Vec<Vec<u8>>,
    pub rows: Vec<Option<Arc<Row>>>,
}

#[derive(Debug, Clone)]
pub struct CommitRecord {
    pub commit_ts: Timestamp,
    pub tables: Vec<TableWrites>,
}

impl CommitRecord {
    pub fn write_count(&self) -> usize {
        self.tables.iter().map(|t| t.keys.len()).sum()
    }
}

impl TableWrites {
    /// The batch as stored in the journal: `_weft_key`, `_weft_op`, then the table's columns
    /// (all nullable, null for deletes).
    pub fn to_batch(&self) -> EngineResult<RecordBatch> {
        self.to_batch_in(self.journal_schema())
    }

    /// The schema of [`TableWrites::to_batch`]'s batch, which depends on the table's schema
    /// alone (so an encoder may keep it per table version).
    pub fn journal_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = vec![
            Field::new(KEY_COLUMN, DataType::Binary, false),
            Field::new(OP_COLUMN, DataType::UInt8, false),
        ];
        fields.extend(
            self.schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true)),
        );
        Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ))
    }

    /// [`TableWrites::to_batch`] with its schema given (from [`TableWrites::journal_schema`]).
    pub fn to_batch_in(&self, schema: SchemaRef) -> EngineResult<RecordBatch> {
        let keys: ArrayRef = Arc::new(BinaryArray::from_iter_values(self.keys.iter()));
        let ops: ArrayRef = Arc::new(UInt8Array::from_iter_values(self.rows.iter().map(|r| {
            if r.is_some() {
                OP_PUT
            } else {
                OP_DELETE
            }
        })));
        let mut columns = vec![keys, ops];
        for (c, f) in self.schema.fields().iter().enumerate() {
            columns.push(column_from_rows(
                f.data_type(),
                self.rows.iter().map(|r| r.as_ref().and_then(|r| r.get(c))),
                self.rows.len(),
            )?);
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    pub fn from_batch(table_id: u64, batch: &RecordBatch) -> EngineResult<TableWrites> {
        let schema = batch.schema();
        if schema.fields().len() < 2
            || schema.field(0).name() != KEY_COLUMN
            || schema.field(1).name() != OP_COLUMN
        {
            return Err(EngineError::Internal(
                "table write batch lacks _weft_key/_weft_op columns".into(),
            ));
        }
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| EngineError::Internal("_weft_key is not binary".into()))?;
        let ops = batch
            .column(1)
            .as_any()
            .downcast_ref::<UInt8Array>()
            .ok_or_else(|| EngineError::Internal("_weft_op is not u8".into()))?;
        let user = batch.project(&(2..schema.fields().len()).collect::<Vec<_>>())?;
        let ncols = user.num_columns();
        let mut out_keys = Vec::with_capacity(batch.num_rows());
        let mut rows = Vec::with_capacity(batch.num_rows());
        for (i, row) in batch_rows(&user, ncols)?.into_iter().enumerate() {
            if keys.is_null(i) {
                return Err(EngineError::Internal("null key in table writes".into()));
            }
            out_keys.push(keys.value(i).to_vec());
            rows.push(match ops.value(i) {
                OP_PUT => Some(Arc::new(row)),
                OP_DELETE => None,
                op => return Err(EngineError::Internal(format!("unknown op code {op}"))),
            });
        }
        Ok(TableWrites {
            table_id,
            schema: user.schema(),
            keys: out_keys,
            rows,
        })
    }
}

//! Result batches in the column types a Describe promised.
//!
//! A statement is described before its parameters are bound; planned with them, a column
//! can come out narrower (`$1::int4 + 1` is described as bigint, and computes an integer
//! once `$1` is bound). PostgreSQL never changes a described type, and a binary-format
//! client decodes by it, so the values are cast to the described types.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{SqlError, SqlResult};

/// `batches` with each column in the type `described` gives it (a lossless widening in
/// practice; a value that does not fit is an error, never a wrong number).
pub fn conform(described: &SchemaRef, batches: Vec<RecordBatch>) -> SqlResult<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|b| conform_batch(described, b))
        .collect()
}

/// One batch with each column in the type `described` gives it.
pub fn conform_batch(described: &SchemaRef, b: RecordBatch) -> SqlResult<RecordBatch> {
    {
        {
            let same = b
                .columns()
                .iter()
                .zip(described.fields())
                .all(|(c, f)| c.data_type() == f.data_type());
            if same {
                return Ok(b);
            }
            let columns = b
                .columns()
                .iter()
                .zip(described.fields())
                .map(|(c, f)| {
                    if c.data_type() == f.data_type() {
                        return Ok(c.clone());
                    }
                    let safe = arrow::compute::CastOptions {
                        safe: false,
                        ..Default::default()
                    };
                    arrow::compute::cast_with_options(c, f.data_type(), &safe).map_err(|e| {
                        SqlError::new(
                            crate::error::codes::DATATYPE_MISMATCH,
                            format!(
                                "column \"{}\" is {} but was described as {}: {e}",
                                f.name(),
                                c.data_type(),
                                f.data_type()
                            ),
                        )
                    })
                })
                .collect::<SqlResult<Vec<_>>>()?;
            let schema = Arc::new(arrow::datatypes::Schema::new(
                b.schema()
                    .fields()
                    .iter()
                    .zip(described.fields())
                    .map(|(_, f)| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            ));
            RecordBatch::try_new(schema, columns).map_err(|e| SqlError::internal(e.to_string()))
        }
    }
}

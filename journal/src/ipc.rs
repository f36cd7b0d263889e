//! One table's writes as an Arrow IPC stream, the bytes a journal record carries for it.
//!
//! The stream is the schema message, the batch message and the end-of-stream marker,
//! exactly as arrow's `StreamWriter` writes them. A table's schema changes only with DDL, so
//! each thread keeps the last [`SCHEMAS_KEPT`] schemas it encoded with their encoded
//! messages: a commit encodes only its rows. The unit tests prove the bytes equal
//! `StreamWriter`'s, which the golden files also pin.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::ipc::writer::{
    write_message, DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamWriter,
};
use weft_engine::record::TableWrites;

/// How many table schemas each thread keeps encoded.
pub const SCHEMAS_KEPT: usize = 32;

/// The end-of-stream marker: a continuation and a zero length.
const EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// A table's schema, its journal batch's schema and that schema's encoded message.
struct Encoded {
    table: SchemaRef,
    journal: SchemaRef,
    message: Arc<[u8]>,
}

thread_local! {
    static SCHEMAS: RefCell<VecDeque<Encoded>> = const { RefCell::new(VecDeque::new()) };
}

/// The Arrow IPC stream of `t`'s rows.
pub fn table_ipc(t: &TableWrites) -> Result<Vec<u8>, String> {
    let (journal, message) = match schema_message(&t.schema) {
        Some(known) => known,
        None => {
            let journal = t.journal_schema();
            if has_dictionaries(&journal) {
                // Dictionaries travel in messages of their own: let arrow's writer do it.
                return stream_writer_ipc(t);
            }
            let message = encode_schema(&journal)?;
            remember(Encoded {
                table: t.schema.clone(),
                journal: journal.clone(),
                message: message.clone(),
            });
            (journal, message)
        }
    };
    let batch = t.to_batch_in(journal).map_err(|e| e.to_string())?;
    let options = IpcWriteOptions::default();
    let (dictionaries, encoded) = IpcDataGenerator::default()
        .encode(
            &batch,
            &mut DictionaryTracker::new(false),
            &options,
            &mut Default::default(),
        )
        .map_err(|e| e.to_string())?;
    debug_assert!(dictionaries.is_empty(), "a schema without dictionaries");
    let mut out = Vec::with_capacity(message.len() + encoded.arrow_data.len() + 256);
    out.extend_from_slice(&message);
    write_message(&mut out, encoded, &options).map_err(|e| e.to_string())?;
    out.extend_from_slice(&EOS);
    Ok(out)
}

/// The same bytes through arrow's `StreamWriter`: the reference the tests hold
/// [`table_ipc`] to, and the path for schemas with dictionaries.
pub fn stream_writer_ipc(t: &TableWrites) -> Result<Vec<u8>, String> {
    let batch = t.to_batch().map_err(|e| e.to_string())?;
    let mut ipc = Vec::new();
    let mut w = StreamWriter::try_new(&mut ipc, &batch.schema()).map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    drop(w);
    Ok(ipc)
}

/// The kept journal schema and message for a table schema, if this thread has it.
fn schema_message(table: &SchemaRef) -> Option<(SchemaRef, Arc<[u8]>)> {
    SCHEMAS.with(|kept| {
        kept.borrow()
            .iter()
            .find(|e| Arc::ptr_eq(&e.table, table) || e.table == *table)
            .map(|e| (e.journal.clone(), e.message.clone()))
    })
}

fn remember(entry: Encoded) {
    SCHEMAS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() == SCHEMAS_KEPT {
            kept.pop_back();
        }
        kept.push_front(entry);
    })
}

/// The schema message as `StreamWriter` writes it first.
fn encode_schema(schema: &SchemaRef) -> Result<Arc<[u8]>, String> {
    let options = IpcWriteOptions::default();
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        &options,
    );
    let mut out = Vec::new();
    write_message(&mut out, encoded, &options).map_err(|e| e.to_string())?;
    Ok(out.into())
}

fn has_dictionaries(schema: &SchemaRef) -> bool {
    fn dict(t: &DataType) -> bool {
        match t {
            DataType::Dictionary(..) => true,
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::FixedSizeList(f, _)
            | DataType::Map(f, _) => dict(f.data_type()),
            DataType::Struct(fields) => fields.iter().any(|f| dict(f.data_type())),
            DataType::Union(fields, _) => fields.iter().any(|(_, f)| dict(f.data_type())),
            _ => false,
        }
    }
    schema.fields().iter().any(|f| dict(f.data_type()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::scalar::ScalarValue;

    fn writes(schema: SchemaRef, n: i64) -> TableWrites {
        TableWrites {
            table_id: 7,
            schema,
            keys: (0..n).map(|i| vec![i as u8]).collect(),
            rows: (0..n)
                .map(|i| {
                    (i % 3 != 2).then(|| {
                        Arc::new(vec![
                            ScalarValue::Int64(Some(i)),
                            ScalarValue::Utf8((i % 2 == 0).then(|| format!("row {i}"))),
                            ScalarValue::Float64(Some(i as f64 / 3.0)),
                        ])
                    })
                })
                .collect(),
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
        ]))
    }

    #[test]
    fn bytes_equal_stream_writers_with_and_without_a_kept_schema() {
        let s = schema();
        for n in [1, 2, 5, 100] {
            let t = writes(s.clone(), n);
            let want = stream_writer_ipc(&t).unwrap();
            assert_eq!(table_ipc(&t).unwrap(), want, "first encoding, {n} rows");
            assert_eq!(table_ipc(&t).unwrap(), want, "kept schema, {n} rows");
            // An equal schema in another allocation finds the kept one.
            let other = writes(schema(), n);
            assert_eq!(table_ipc(&other).unwrap(), want, "equal schema, {n} rows");
        }
    }

    #[test]
    fn a_changed_schema_is_encoded_anew() {
        let t = writes(schema(), 3);
        table_ipc(&t).unwrap();
        let mut fields = schema().fields().to_vec();
        fields.push(Arc::new(Field::new("y", DataType::Int32, true)));
        let wider = Arc::new(Schema::new(fields));
        let mut w = writes(wider, 3);
        for r in w.rows.iter_mut().flatten() {
            let mut row = (**r).clone();
            row.push(ScalarValue::Int32(Some(5)));
            *r = Arc::new(row);
        }
        assert_eq!(table_ipc(&w).unwrap(), stream_writer_ipc(&w).unwrap());
        assert_ne!(table_ipc(&w).unwrap(), table_ipc(&t).unwrap());
    }

    #[test]
    fn the_kept_schemas_are_bounded() {
        for i in 0..SCHEMAS_KEPT + 5 {
            let s = Arc::new(Schema::new(vec![Field::new(
                format!("c{i}"),
                DataType::Int64,
                true,
            )]));
            let t = TableWrites {
                table_id: i as u64,
                schema: s,
                keys: vec![vec![1]],
                rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(1))]))],
            };
            assert_eq!(table_ipc(&t).unwrap(), stream_writer_ipc(&t).unwrap());
        }
        assert_eq!(SCHEMAS.with(|k| k.borrow().len()), SCHEMAS_KEPT);
    }
}

//! COPY's execution: `COPY ... TO STDOUT` as a query, `COPY ... FROM STDIN`'s records
//! written through the direct path (`copy_load`) or as INSERTs.

use std::sync::Arc;

use crate::sql::outcome::Outcome;
use datafusion::sql::sqlparser::ast::{self, Expr as SqlExpr, Statement};

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::copy::CopyIn;
use crate::sql::copy_chunk::ReadyChunk;
use crate::sql::copy_fields::RecordColumns;
use crate::sql::exec::quote;
use crate::sql::exec::table_name;
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;

impl Executor {
    /// `COPY t [(cols)] FROM STDIN` (checks the target; the data comes later) and
    /// `COPY t [(cols)] | (query) TO STDOUT` (runs the query and renders the lines).
    pub async fn copy(
        &self,
        txn: &mut Txn,
        source: ast::CopySource,
        to: bool,
        target: ast::CopyTarget,
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
    ) -> SqlResult<Outcome> {
        let format = crate::sql::copy::CopyFormat::from_options(options, legacy)?;
        match (&target, to) {
            (ast::CopyTarget::Stdin, false) | (ast::CopyTarget::Stdout, true) => {}
            _ => {
                return Err(SqlError::unsupported(
                    "COPY to or from a file or program is not supported: use STDIN/STDOUT (psql's \\copy)",
                ))
            }
        }
        if !to {
            let ast::CopySource::Table {
                table_name: name,
                columns,
            } = source
            else {
                return Err(SqlError::syntax("COPY FROM needs a table"));
            };
            let name = table_name(&name)?;
            let def = self.table_def(txn, &name).await?;
            let cols: Vec<String> = if columns.is_empty() {
                def.columns.iter().map(|c| c.name.clone()).collect()
            } else {
                let mut cols = Vec::new();
                for c in &columns {
                    let n = ident_name(c);
                    if def.column_index(&n).is_none() {
                        return Err(SqlError::new(
                            codes::UNDEFINED_COLUMN,
                            format!("column \"{n}\" of relation \"{name}\" does not exist"),
                        ));
                    }
                    cols.push(n);
                }
                cols
            };
            return Ok(Outcome::CopyIn(Box::new(crate::sql::copy::CopyIn::new(
                name, cols, format,
            ))));
        }
        let query = match source {
            ast::CopySource::Query(q) => Statement::Query(q),
            ast::CopySource::Table {
                table_name: name,
                columns,
            } => {
                let list = if columns.is_empty() {
                    "*".to_string()
                } else {
                    columns
                        .iter()
                        .map(|c| quote(&ident_name(c)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let sql = format!("SELECT {list} FROM {}", quote(&table_name(&name)?));
                let mut stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                    &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                    &sql,
                )
                .map_err(|e| SqlError::syntax(e.to_string()))?;
                stmts
                    .pop()
                    .ok_or_else(|| SqlError::internal("empty COPY query"))?
            }
        };
        let Outcome::Rows { schema, batches } =
            self.query(txn, query, None).await?.materialized().await?
        else {
            return Err(SqlError::internal("COPY's query returned no rows"));
        };
        Ok(Outcome::CopyOut {
            schema,
            batches,
            format,
        })
    }

    /// Inserts records a COPY FROM parsed.
    pub async fn copy_rows(
        &self,
        txn: &mut Txn,
        copy: &mut CopyIn,
        records: RecordColumns,
    ) -> SqlResult<()> {
        if records.rows == 0 || self.copy_rows_direct(txn, copy, &records).await? {
            return Ok(());
        }
        let cols = copy
            .columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO {} ({cols}) VALUES (NULL)", quote(&copy.table));
        let mut stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            &sql,
        )
        .map_err(|e| SqlError::internal(e.to_string()))?;
        let Some(Statement::Insert(mut ins)) = stmts.pop() else {
            return Err(SqlError::internal("COPY's INSERT did not parse"));
        };
        let n = records.rows;
        let records = records.rows();
        if let Some(ast::SetExpr::Values(v)) = ins.source.as_mut().map(|q| q.body.as_mut()) {
            v.rows = records
                .into_iter()
                .map(|r| {
                    let row: Vec<SqlExpr> = r
                        .into_iter()
                        .map(|f| {
                            SqlExpr::Value(
                                match f {
                                    Some(s) => ast::Value::SingleQuotedString(s),
                                    None => ast::Value::Null,
                                }
                                .into(),
                            )
                        })
                        .collect();
                    ast::Parens::with_empty_span(row)
                })
                .collect();
        }
        self.insert(txn, ins, None).await?;
        copy.count += n;
        copy.uncommitted += n;
        Ok(())
    }

    /// COPY's records written directly; `false` when the COPY must take the INSERT path.
    pub async fn copy_rows_direct(
        &self,
        txn: &mut Txn,
        copy: &mut CopyIn,
        records: &RecordColumns,
    ) -> SqlResult<bool> {
        let def = self.table_def(txn, &copy.table).await?;
        let Some(ready) = ReadyChunk::make(&self.db, def, &copy.columns, records).await? else {
            return Ok(false);
        };
        self.copy_write(txn, copy, ready).await?;
        Ok(true)
    }

    /// Writes a ready chunk in the transaction: a key that is taken (in storage at the
    /// snapshot, or by the transaction's own writes) is 23505.
    pub async fn copy_write(
        &self,
        txn: &mut Txn,
        copy: &mut CopyIn,
        ready: ReadyChunk,
    ) -> SqlResult<()> {
        let ReadyChunk { def, rows, keys } = ready;
        copy.direct = Some(def.clone());
        txn.schema_keys
            .insert(weft_engine::key::catalog_key(&def.name));
        let n = rows.len();
        let schema = def.arrow_schema();
        // The stored rows of every key, looked up at once; the transaction's own writes
        // (earlier chunks, earlier records of this one) are looked at record by record.
        let stored = if def.primary_key.is_empty() {
            vec![None; keys.len()]
        } else {
            self.current_many(txn, def.id, &keys).await?
        };
        // The keys of the commit in flight, which the snapshot may not include.
        let committing = copy
            .committing_keys
            .as_ref()
            .filter(|(table, _)| *table == def.id)
            .map(|(_, keys)| keys);
        for ((row, key), stored) in rows.into_iter().zip(keys).zip(stored) {
            let taken = match txn.own_write(def.id, &key) {
                Some(own) => own.is_some(),
                None => {
                    stored.is_some() || committing.is_some_and(|k| k.binary_search(&key).is_ok())
                }
            };
            if taken && !def.primary_key.is_empty() {
                return Err(Self::pk_violation(&def, &row));
            }
            self.write_row(txn, &def, &schema, key, Some(Arc::new(row)))
                .await?;
        }
        copy.count += n;
        copy.uncommitted += n;
        Ok(())
    }
}

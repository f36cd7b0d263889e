//! `ALTER TABLE t ADD [CONSTRAINT name] PRIMARY KEY (cols)`, as pg_dump writes every
//! primary key after the table's data. A weft table is stored by its primary key (a table
//! without one by hidden row ids), so the table is rewritten into a fresh table id keyed by
//! the new key, as ALTER COLUMN TYPE rewrites it: the key's columns become NOT NULL, a NULL
//! among them is 23502 and a duplicate 23505, as in PostgreSQL. The rewrite is one
//! transaction, bounded by the transaction limits (54000 beyond them).

use datafusion::sql::sqlparser::ast::PrimaryKeyConstraint;
use weft_engine::schema::TableDef;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::index_ddl::{index_columns, keyable};
use crate::sql::names::ident_name;

impl Executor {
    pub(crate) async fn add_primary_key(
        &self,
        txn: &mut Txn,
        def: TableDef,
        pk: PrimaryKeyConstraint,
    ) -> SqlResult<TableDef> {
        if !def.primary_key.is_empty() {
            return Err(SqlError::new(
                codes::INVALID_TABLE_DEFINITION,
                format!(
                    "multiple primary keys for table \"{}\" are not allowed",
                    def.relname()
                ),
            ));
        }
        let cols = index_columns(&def, &pk.columns)?;
        for &i in &cols {
            if !keyable(&def.columns[i].ty) {
                return Err(SqlError::unsupported(format!(
                    "type {} cannot be part of a primary key",
                    def.columns[i].ty.pg_name()
                )));
            }
        }
        let mut new = def.clone();
        new.primary_key = cols.clone();
        new.pkey_name = pk.name.as_ref().map(ident_name);
        let name = new.pkey_name();
        if def.indexes.iter().any(|i| i.name == name) {
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        for &i in &cols {
            new.columns[i].nullable = false;
        }
        self.rewrite(txn, &def, new, |r| Ok(r.clone())).await
    }
}

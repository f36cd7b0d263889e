//! FOREIGN KEY constraints: declared by CREATE TABLE, checked and acted on as rows are
//! written, under optimistic concurrency.
//!
//! A child row's write checks that its parent exists in the transaction's snapshot and
//! *locks* the parent's key: the adjudicator treats a locked key like a written one, so a
//! concurrent delete of that parent and this insert cannot both commit (one gets 40001),
//! at REPEATABLE READ as at SERIALIZABLE. A parent row's delete (or a change of its
//! referenced columns) finds the children that reference it and refuses (NO ACTION,
//! RESTRICT) or acts (CASCADE, SET NULL, SET DEFAULT); it writes the parent's key, which
//! conflicts with any concurrent child that locked it. `DEFERRABLE INITIALLY DEFERRED`
//! constraints are checked at COMMIT instead.

use std::sync::Arc;

use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, ReferentialAction};
use futures::future::BoxFuture;
use futures::FutureExt;
use weft_engine::index::ForeignKeyDef;
use weft_engine::key::{catalog_key, encode_key};
use weft_engine::row::Row;
use weft_engine::schema::TableDef;

use crate::catalog::txn::{Deferred, Txn};
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;

/// A FOREIGN KEY as CREATE TABLE declares it, before its parent is resolved.
pub(crate) struct ForeignKeySpec {
    pub name: Option<String>,
    pub columns: Vec<usize>,
    pub parent: String,
    pub parent_columns: Vec<String>,
    pub on_delete: char,
    pub on_update: char,
    pub deferrable: bool,
    pub deferred: bool,
}

fn action(a: Option<ReferentialAction>) -> char {
    match a {
        None | Some(ReferentialAction::NoAction) => 'a',
        Some(ReferentialAction::Restrict) => 'r',
        Some(ReferentialAction::Cascade) => 'c',
        Some(ReferentialAction::SetNull) => 'n',
        Some(ReferentialAction::SetDefault) => 'd',
    }
}

impl ForeignKeySpec {
    pub(crate) fn from_ast(
        name: Option<String>,
        columns: Vec<usize>,
        fk: &ast::ForeignKeyConstraint,
    ) -> SqlResult<ForeignKeySpec> {
        if matches!(
            fk.match_kind,
            Some(
                ast::ConstraintReferenceMatchKind::Full
                    | ast::ConstraintReferenceMatchKind::Partial
            )
        ) {
            return Err(SqlError::unsupported(
                "MATCH FULL and MATCH PARTIAL foreign keys are not supported",
            ));
        }
        let ch = fk.characteristics.as_ref();
        let deferred = ch.and_then(|c| c.initially) == Some(ast::DeferrableInitial::Deferred);
        let deferrable = ch.and_then(|c| c.deferrable).unwrap_or(deferred);
        if deferred && !deferrable {
            return Err(SqlError::syntax(
                "constraint declared INITIALLY DEFERRED must be DEFERRABLE",
            ));
        }
        Ok(ForeignKeySpec {
            name,
            columns,
            parent: table_name(&fk.foreign_table)?,
            parent_columns: fk.referred_columns.iter().map(ident_name).collect(),
            on_delete: action(fk.on_delete),
            on_update: action(fk.on_update),
            deferrable,
            deferred,
        })
    }
}

/// Whether the key columns of a reference are the primary key of `parent` (in some order).
fn same_set(a: &[usize], b: &[usize]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

fn shown(v: &ScalarValue) -> String {
    if v.is_null() {
        "null".into()
    } else {
        v.to_string()
    }
}

fn key_text(def: &TableDef, cols: &[usize], row: &Row) -> (String, String) {
    (
        cols.iter()
            .map(|&c| def.columns[c].name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        cols.iter()
            .map(|&c| shown(&row[c]))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

impl Executor {
    /// Resolves the FOREIGN KEYs of a new table `def` (whose columns are known) against
    /// their parents; a parent other than the table itself gains `def` in its
    /// `referenced_by`, written in the same transaction.
    pub(crate) async fn add_foreign_keys(
        &self,
        txn: &mut Txn,
        def: &mut TableDef,
        specs: Vec<ForeignKeySpec>,
        taken: &mut Vec<String>,
    ) -> SqlResult<()> {
        for spec in specs {
            let parent: TableDef = if spec.parent == def.name {
                def.clone()
            } else {
                (*self.table_def(txn, &spec.parent).await?).clone()
            };
            let parent_columns: Vec<usize> = if spec.parent_columns.is_empty() {
                if parent.primary_key.is_empty() {
                    return Err(SqlError::new(
                        "42830",
                        format!(
                            "there is no primary key for referenced table \"{}\"",
                            parent.relname()
                        ),
                    ));
                }
                parent.primary_key.clone()
            } else {
                spec.parent_columns
                    .iter()
                    .map(|c| {
                        parent.column_index(c).ok_or_else(|| {
                            SqlError::new(
                                codes::UNDEFINED_COLUMN,
                                format!("column \"{c}\" referenced in foreign key constraint does not exist"),
                            )
                        })
                    })
                    .collect::<SqlResult<_>>()?
            };
            if parent_columns.len() != spec.columns.len() {
                return Err(SqlError::new(
                    "42830",
                    "number of referencing and referenced columns for foreign key disagree",
                ));
            }
            let unique = same_set(&parent_columns, &parent.primary_key)
                || parent.indexes.iter().any(|i| {
                    i.unique
                        && i.valid
                        && i.predicate.is_none()
                        && same_set(&i.columns, &parent_columns)
                });
            if !unique {
                return Err(SqlError::new(
                    "42830",
                    format!(
                        "there is no unique constraint matching given keys for referenced table \"{}\"",
                        parent.relname()
                    ),
                ));
            }
            for (&c, &p) in spec.columns.iter().zip(&parent_columns) {
                let (ct, pt) = (&def.columns[c].ty, &parent.columns[p].ty);
                let compatible = ct.arrow_type() == pt.arrow_type()
                    || ScalarValue::try_from(&ct.arrow_type())
                        .and_then(|v| v.cast_to(&pt.arrow_type()))
                        .is_ok()
                        && !matches!(
                            (ct.arrow_type().is_numeric(), pt.arrow_type().is_numeric()),
                            (true, false) | (false, true)
                        );
                if !compatible {
                    return Err(SqlError::new(
                        codes::DATATYPE_MISMATCH,
                        "foreign key constraint cannot be implemented",
                    )
                    .with_detail(format!(
                        "Key columns \"{}\" and \"{}\" are of incompatible types: {} and {}.",
                        def.columns[c].name,
                        parent.columns[p].name,
                        ct.pg_name(),
                        pt.pg_name()
                    )));
                }
            }
            let name = match spec.name {
                Some(n) => n,
                None => {
                    let cols: Vec<&str> = spec
                        .columns
                        .iter()
                        .map(|&c| def.columns[c].name.as_str())
                        .collect();
                    Self::choose_name(taken, &def.name, &cols, "fkey")
                }
            };
            let (_, oid) = self.fresh_index_ids();
            def.foreign_keys.push(ForeignKeyDef {
                name,
                oid,
                columns: spec.columns,
                parent: parent.name.clone(),
                parent_columns,
                on_delete: spec.on_delete,
                on_update: spec.on_update,
                deferrable: spec.deferrable,
                deferred: spec.deferred,
                validated: true,
            });
            if parent.name == def.name {
                if !def.referenced_by.contains(&def.name) {
                    def.referenced_by.push(def.name.clone());
                }
            } else if !parent.referenced_by.contains(&def.name) {
                let mut parent = parent;
                parent.referenced_by.push(def.name.clone());
                self.put_table_def(txn, &parent)?;
            }
        }
        Ok(())
    }

    /// The foreign keys a dropped table takes with it: its own leave their parents'
    /// `referenced_by`; those of other tables that reference it are an error (2BP01)
    /// unless CASCADE drops them (or their tables are dropped in the same statement).
    pub(crate) async fn drop_references(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        dropping: &[String],
        cascade: bool,
        notices: &mut Vec<crate::sql::outcome::Notice>,
    ) -> SqlResult<()> {
        for child_name in def.referenced_by.iter().filter(|c| **c != def.name) {
            let Ok(child) = self.table_def(txn, child_name).await else {
                continue;
            };
            let fks: Vec<&ForeignKeyDef> = child
                .foreign_keys
                .iter()
                .filter(|f| f.parent == def.name)
                .collect();
            if fks.is_empty() || dropping.contains(child_name) {
                continue;
            }
            if !cascade {
                return Err(SqlError::new(
                    "2BP01",
                    format!(
                        "cannot drop table {} because other objects depend on it",
                        def.name
                    ),
                )
                .with_detail(format!(
                    "constraint {} on table {} depends on table {}",
                    fks[0].name, child.name, def.name
                ))
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
            }
            for fk in &fks {
                notices.push(crate::sql::outcome::Notice {
                    severity: "NOTICE",
                    code: "00000",
                    message: format!(
                        "drop cascades to constraint {} on table {}",
                        fk.name, child.name
                    ),
                });
            }
            let mut child = (*child).clone();
            child.foreign_keys.retain(|f| f.parent != def.name);
            self.put_table_def(txn, &child)?;
        }
        let mut parents: Vec<&str> = def
            .foreign_keys
            .iter()
            .map(|f| f.parent.as_str())
            .filter(|p| *p != def.name)
            .collect();
        parents.dedup();
        for p in parents {
            if let Ok(parent) = self.table_def(txn, p).await {
                let mut parent = (*parent).clone();
                parent.referenced_by.retain(|c| *c != def.name);
                self.put_table_def(txn, &parent)?;
            }
        }
        Ok(())
    }

    /// The key that identifies the parent row a child row references under `fk` (in the
    /// parent table, or in the unique index the reference uses), or `None` when a
    /// referencing column is NULL (MATCH SIMPLE: no check).
    fn parent_key(
        parent: &TableDef,
        fk: &ForeignKeyDef,
        values: &[ScalarValue],
    ) -> SqlResult<Option<(u64, Vec<u8>)>> {
        if values.iter().any(|v| v.is_null()) {
            return Ok(None);
        }
        // The values in the parent's types.
        let cast: Vec<ScalarValue> = values
            .iter()
            .zip(&fk.parent_columns)
            .map(|(v, &p)| {
                let want = parent.columns[p].ty.arrow_type();
                if v.data_type() == want {
                    Ok(v.clone())
                } else {
                    v.cast_to(&want)
                        .map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))
                }
            })
            .collect::<SqlResult<_>>()?;
        let bad = |e: weft_engine::EngineError| SqlError::new(codes::DATA_EXCEPTION, e.to_string());
        if same_set(&fk.parent_columns, &parent.primary_key) {
            let ordered: Vec<&ScalarValue> = parent
                .primary_key
                .iter()
                .map(|k| {
                    let at = fk.parent_columns.iter().position(|p| p == k).unwrap_or(0);
                    &cast[at]
                })
                .collect();
            return Ok(Some((parent.id, encode_key(&ordered).map_err(bad)?)));
        }
        let idx = parent
            .indexes
            .iter()
            .find(|i| i.unique && i.valid && same_set(&i.columns, &fk.parent_columns))
            .ok_or_else(|| SqlError::internal("a foreign key's unique index is gone"))?;
        let ordered: Vec<&ScalarValue> = idx
            .columns
            .iter()
            .map(|k| {
                let at = fk.parent_columns.iter().position(|p| p == k).unwrap_or(0);
                &cast[at]
            })
            .collect();
        Ok(Some((idx.id, idx.prefix(&ordered).map_err(bad)?)))
    }

    /// Checks that the parent a child row references exists, and locks it.
    async fn check_parent(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        fk: &ForeignKeyDef,
        row: &Row,
    ) -> SqlResult<()> {
        let values: Vec<ScalarValue> = fk.columns.iter().map(|&c| row[c].clone()).collect();
        let parent = if fk.parent == def.name {
            Arc::new(def.clone())
        } else {
            self.table_def(txn, &fk.parent).await?
        };
        txn.schema_keys.insert(catalog_key(&parent.name));
        let Some((table, key)) = Self::parent_key(&parent, fk, &values)? else {
            return Ok(());
        };
        if self.current(txn, table, &key).await?.is_none() {
            let (cols, vals) = key_text(def, &fk.columns, row);
            return Err(SqlError::new(
                codes::FOREIGN_KEY_VIOLATION,
                format!(
                    "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                    def.relname(),
                    fk.name
                ),
            )
            .with_detail(format!(
                "Key ({cols})=({vals}) is not present in table \"{}\".",
                parent.relname()
            )));
        }
        txn.locked.push((table, key));
        Ok(())
    }

    /// The child-side checks of a row write: every foreign key whose columns the write
    /// sets (or changes) must find its parent; deferred ones are noted for COMMIT.
    pub(crate) async fn check_references(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        key: &[u8],
        old: Option<&Row>,
        new: &Row,
    ) -> SqlResult<()> {
        for fk in &def.foreign_keys {
            if let Some(o) = old {
                if fk.columns.iter().all(|&c| o[c] == new[c]) {
                    continue;
                }
            }
            if fk.columns.iter().any(|&c| new[c].is_null()) {
                continue;
            }
            if txn
                .constraint_modes
                .deferred(&fk.name, fk.deferrable, fk.deferred)
            {
                txn.deferred.push(Deferred::Child {
                    table: def.name.clone(),
                    constraint: fk.name.clone(),
                    key: key.to_vec(),
                });
                continue;
            }
            self.check_parent(txn, def, fk, new).await?;
        }
        Ok(())
    }

    /// The parent-side effects of a row write: when a referenced row goes away or its
    /// referenced values change, the children that reference it are refused or acted on.
    pub(crate) fn on_referenced_change<'a>(
        &'a self,
        txn: &'a mut Txn,
        def: &'a TableDef,
        old: &'a Row,
        new: Option<&'a Row>,
    ) -> BoxFuture<'a, SqlResult<()>> {
        async move {
            for child_name in &def.referenced_by {
                let child = if *child_name == def.name {
                    Arc::new(def.clone())
                } else {
                    self.table_def(txn, child_name).await?
                };
                txn.schema_keys.insert(catalog_key(&child.name));
                for fk in child.foreign_keys.iter().filter(|f| f.parent == def.name) {
                    let changed = match new {
                        None => true,
                        Some(n) => fk.parent_columns.iter().any(|&c| old[c] != n[c]),
                    };
                    if !changed || fk.parent_columns.iter().any(|&c| old[c].is_null()) {
                        continue;
                    }
                    let action = if new.is_none() { fk.on_delete } else { fk.on_update };
                    let deferred =
                        txn.constraint_modes
                            .deferred(&fk.name, fk.deferrable, fk.deferred);
                    if deferred && action == 'a' {
                        txn.deferred.push(Deferred::Parent {
                            table: def.name.clone(),
                            constraint: fk.name.clone(),
                            child: child.name.clone(),
                            values: fk.parent_columns.iter().map(|&c| old[c].clone()).collect(),
                        });
                        continue;
                    }
                    let values: Vec<ScalarValue> =
                        fk.parent_columns.iter().map(|&c| old[c].clone()).collect();
                    let children = self.referencing_rows(txn, &child, fk, &values).await?;
                    if children.is_empty() {
                        continue;
                    }
                    match action {
                        'a' | 'r' => {
                            let (cols, vals) = key_text(def, &fk.parent_columns, old);
                            return Err(SqlError::new(
                                codes::FOREIGN_KEY_VIOLATION,
                                format!(
                                    "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                                    def.relname(), fk.name, child.relname()
                                ),
                            )
                            .with_detail(format!(
                                "Key ({cols})=({vals}) is still referenced from table \"{}\".",
                                child.relname()
                            )));
                        }
                        _ => {
                            let schema = child.arrow_schema();
                            for (ckey, crow) in children {
                                let replaced = match (action, new) {
                                    ('c', None) => None,
                                    ('c', Some(n)) => {
                                        let mut r = crow.clone();
                                        for (&c, &p) in fk.columns.iter().zip(&fk.parent_columns) {
                                            r[c] = n[p].cast_to(&child.columns[c].ty.arrow_type()).map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))?;
                                        }
                                        Some(r)
                                    }
                                    ('n', _) => {
                                        let mut r = crow.clone();
                                        for &c in &fk.columns {
                                            r[c] = ScalarValue::try_from(&child.columns[c].ty.arrow_type())
                                                .map_err(|e| SqlError::internal(e.to_string()))?;
                                        }
                                        Some(r)
                                    }
                                    _ => {
                                        let mut r = crow.clone();
                                        for &c in &fk.columns {
                                            r[c] = self.default_value(&child, c).await?;
                                        }
                                        Some(r)
                                    }
                                };
                                if let Some(r) = &replaced {
                                    for &c in &fk.columns {
                                        if r[c].is_null() && !child.columns[c].nullable {
                                            return Err(SqlError::new(
                                                codes::NOT_NULL_VIOLATION,
                                                format!(
                                                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                                                    child.columns[c].name, child.relname()
                                                ),
                                            ));
                                        }
                                    }
                                    if action == 'd' {
                                        self.check_references(txn, &child, &ckey, Some(&crow), r).await?;
                                    }
                                }
                                // The new parent value is the one this statement writes.
                                self.write_row_as(
                                    txn,
                                    &child,
                                    &schema,
                                    ckey,
                                    replaced.map(Arc::new),
                                    crate::sql::row_write::Follow::NOT_REFERENCES,
                                )
                                .await?;
                            }
                        }
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }

    /// A column's default, evaluated (SET DEFAULT).
    pub(crate) async fn default_value(&self, def: &TableDef, col: usize) -> SqlResult<ScalarValue> {
        let c = &def.columns[col];
        let Some(sql) = &c.default else {
            return ScalarValue::try_from(&c.ty.arrow_type())
                .map_err(|e| SqlError::internal(e.to_string()));
        };
        let ctx = self.db.scratch_context();
        let plan = ctx
            .state()
            .create_logical_plan(&format!("SELECT CAST(({sql}) AS {})", c.ty.pg_name()))
            .await?;
        let (_, batches) = Self::collect(&ctx, plan).await?;
        let b = batches
            .first()
            .ok_or_else(|| SqlError::internal("a default produced no row"))?;
        let v = ScalarValue::try_from_array(b.column(0), 0)?;
        let want = c.ty.arrow_type();
        if v.data_type() == want {
            Ok(v)
        } else {
            v.cast_to(&want)
                .map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))
        }
    }

    /// The child rows whose `fk` columns equal `values`, as the transaction sees them.
    async fn referencing_rows(
        &self,
        txn: &Txn,
        child: &TableDef,
        fk: &ForeignKeyDef,
        values: &[ScalarValue],
    ) -> SqlResult<Vec<(Vec<u8>, Row)>> {
        let want: Vec<ScalarValue> = values
            .iter()
            .zip(&fk.columns)
            .map(|(v, &c)| {
                let t = child.columns[c].ty.arrow_type();
                if v.data_type() == t {
                    v.clone()
                } else {
                    v.cast_to(&t).unwrap_or_else(|_| v.clone())
                }
            })
            .collect();
        let rows = self.table_rows(txn, child).await?;
        Ok(rows
            .into_iter()
            .filter(|(_, r)| fk.columns.iter().zip(&want).all(|(&c, v)| &r[c] == v))
            .collect())
    }

    /// The deferred foreign-key checks, at COMMIT: each noted child row (as it is now)
    /// must find its parent, and each noted parent value that went away must be
    /// referenced by no child unless a parent with it exists again.
    pub(crate) async fn check_deferred(&self, txn: &mut Txn) -> SqlResult<()> {
        let pending = std::mem::take(&mut txn.deferred);
        for d in pending {
            match d {
                Deferred::Child {
                    table,
                    constraint,
                    key,
                } => {
                    let Ok(def) = self.table_def(txn, &table).await else {
                        continue;
                    };
                    let Some(fk) = def.foreign_keys.iter().find(|f| f.name == constraint) else {
                        continue;
                    };
                    let Some(row) = self.current(txn, def.id, &key).await? else {
                        continue;
                    };
                    self.check_parent(txn, &def, fk, &row).await?;
                }
                Deferred::Parent {
                    table,
                    constraint,
                    child,
                    values,
                } => {
                    let (Ok(parent), Ok(child)) = (
                        self.table_def(txn, &table).await,
                        self.table_def(txn, &child).await,
                    ) else {
                        continue;
                    };
                    let Some(fk) = child.foreign_keys.iter().find(|f| f.name == constraint) else {
                        continue;
                    };
                    if let Some((t, k)) = Self::parent_key(&parent, fk, &values)? {
                        if self.current(txn, t, &k).await?.is_some() {
                            continue;
                        }
                    }
                    if !self
                        .referencing_rows(txn, &child, fk, &values)
                        .await?
                        .is_empty()
                    {
                        let cols: Vec<String> = fk
                            .parent_columns
                            .iter()
                            .map(|&c| parent.columns[c].name.clone())
                            .collect();
                        let vals: Vec<String> = values.iter().map(shown).collect();
                        return Err(SqlError::new(
                            codes::FOREIGN_KEY_VIOLATION,
                            format!(
                                "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                                parent.relname(), fk.name, child.relname()
                            ),
                        )
                        .with_detail(format!(
                            "Key ({})=({}) is still referenced from table \"{}\".",
                            cols.join(", "),
                            vals.join(", "),
                            child.relname()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

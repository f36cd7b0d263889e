//! The DataFusion `TableProvider` over a storage node: a table as of one read timestamp,
//! overlaid with the reading transaction's own uncommitted writes.
//!
//! This is the one place weft's storage meets DataFusion's planner.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;

use crate::key::{encode_key, prefix_successor};
use crate::row::Row;
use crate::schema::TableDef;
use crate::service::StorageService;
use crate::storage::scan::{OutColumn, ScanKind, ScanRequest};
use crate::time::Timestamp;

mod implied;
mod index_lookup;
pub mod key_order;

/// Most keys a scan looks up one by one rather than scanning.
const POINT_KEYS_MAX: usize = 1024;

/// A transaction's uncommitted writes to one table: key → new row, or `None` for a delete.
pub type Overlay = BTreeMap<Vec<u8>, Option<Arc<Row>>>;

/// What one scan read, for SERIALIZABLE read-set validation: the whole table (a predicate
/// over it), or one key (a primary-key lookup, whether or not a row was there).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadSpan {
    Table,
    Key(Vec<u8>),
}

/// The reads of one transaction, collected by the scans it runs.
#[derive(Debug, Default)]
pub struct ReadLog(Mutex<BTreeSet<(u64, ReadSpan)>>);

impl ReadLog {
    pub fn record(&self, table_id: u64, span: ReadSpan) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if span != ReadSpan::Table && g.contains(&(table_id, ReadSpan::Table)) {
            return;
        }
        g.insert((table_id, span));
    }

    pub fn take(&self) -> Vec<(u64, ReadSpan)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
pub struct WeftTable {
    pub def: Arc<TableDef>,
    storage: Arc<dyn StorageService>,
    read_ts: Timestamp,
    overlay: Option<Arc<Overlay>>,
    schema: SchemaRef,
    defaults: HashMap<String, Expr>,
    reads: Option<Arc<ReadLog>>,
    /// The transaction's own writes to the table's index entries, by index table id.
    index_overlays: HashMap<u64, Arc<Overlay>>,
}

impl WeftTable {
    /// The transaction's own index entries, which index lookups read with the stored ones.
    pub fn with_index_overlays(mut self, overlays: HashMap<u64, Arc<Overlay>>) -> WeftTable {
        self.index_overlays = overlays;
        self
    }

    pub fn new(
        def: Arc<TableDef>,
        storage: Arc<dyn StorageService>,
        read_ts: Timestamp,
        overlay: Option<Arc<Overlay>>,
        with_key: bool,
        defaults: HashMap<String, Expr>,
        reads: Option<Arc<ReadLog>>,
    ) -> WeftTable {
        let schema = if with_key {
            def.arrow_schema_with_key()
        } else {
            def.arrow_schema()
        };
        // Columns are declared nullable to DataFusion: weft checks NOT NULL itself, so the
        // error is PostgreSQL's 23502 naming the column, not a planner error.
        let schema = Arc::new(arrow::datatypes::Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        WeftTable {
            def,
            storage,
            read_ts,
            overlay,
            schema,
            defaults,
            reads,
            index_overlays: HashMap::new(),
        }
    }

    fn record(&self, span: ReadSpan) {
        if let Some(r) = &self.reads {
            r.record(self.def.id, span);
        }
    }

    /// If `filter` pins a primary-key column to constants (`pk = c`, `c = pk`,
    /// `pk IN (c, ...)`, `pk = c OR pk = d`), the column's index and the constants.
    fn key_constraint(&self, filter: &Expr) -> Option<(usize, Vec<ScalarValue>)> {
        self.column_constraint(filter, &|i| self.def.primary_key.contains(&i))
    }

    /// The constants `filters` pin the columns `wanted` accepts to (of two constraints on
    /// one column, the narrower).
    fn pinned(
        &self,
        filters: &[Expr],
        wanted: impl Fn(usize) -> bool + Copy,
    ) -> HashMap<usize, Vec<ScalarValue>> {
        let mut pinned: HashMap<usize, Vec<ScalarValue>> = HashMap::new();
        for f in filters {
            if let Some((i, vals)) = self.column_constraint(f, &wanted) {
                match pinned.get(&i) {
                    Some(old) if old.len() <= vals.len() => {}
                    _ => {
                        pinned.insert(i, vals);
                    }
                }
            }
        }
        pinned
    }

    /// If `filter` pins a column that `wanted` accepts to constants (`col = c`,
    /// `c = col`, `col IN (c, ...)`), the column's index and the constants.
    fn column_constraint(
        &self,
        filter: &Expr,
        wanted: &dyn Fn(usize) -> bool,
    ) -> Option<(usize, Vec<ScalarValue>)> {
        let pk_col = |e: &Expr| -> Option<usize> {
            let Expr::Column(c) = e else { return None };
            let i = self.def.column_index(&c.name)?;
            wanted(i).then_some(i)
        };
        let lit_of = |e: &Expr, col: usize| -> Option<ScalarValue> {
            let Expr::Literal(v, _) = e else { return None };
            let want = self.def.columns[col].ty.arrow_type();
            (v.data_type() == want && !v.is_null()).then(|| v.clone())
        };
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                if let Some(i) = pk_col(left) {
                    return Some((i, vec![lit_of(right, i)?]));
                }
                let i = pk_col(right)?;
                Some((i, vec![lit_of(left, i)?]))
            }
            Expr::InList(l) if !l.negated => {
                let i = pk_col(&l.expr)?;
                let vals: Option<Vec<ScalarValue>> = l.list.iter().map(|e| lit_of(e, i)).collect();
                Some((i, vals?))
            }
            // `c = 1 OR c = 2`: what DataFusion makes of a short IN list.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                let (i, mut vals) = self.column_constraint(left, wanted)?;
                let (j, more) = self.column_constraint(right, wanted)?;
                (i == j).then(|| {
                    vals.extend(more);
                    (i, vals)
                })
            }
            _ => None,
        }
    }

    /// The keys that `filters` restrict the scan to, when they pin every primary-key
    /// column (one column may take several values).
    fn point_keys(&self, filters: &[Expr]) -> Option<Vec<Vec<u8>>> {
        if self.def.primary_key.is_empty() {
            return None;
        }
        let pinned = self.pinned(filters, |i| self.def.primary_key.contains(&i));
        let keys = combinations(&pinned, &self.def.primary_key)?;
        let mut out: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| encode_key(k))
            .collect::<Result<_, _>>()
            .ok()?;
        out.sort();
        out.dedup();
        Some(out)
    }

    /// The key range `[lo, hi)` that range predicates on the first primary-key column
    /// (`<`, `<=`, `>`, `>=`, `BETWEEN`) restrict the scan to.
    fn key_range(&self, filters: &[Expr]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let mut lo: Option<Vec<u8>> = None;
        let mut hi: Option<Vec<u8>> = None;
        for f in filters {
            for (op, v) in self.first_key_bounds(f) {
                let Ok(enc) = encode_key(&[&v]) else { continue };
                // Keys whose first component is v all start with enc; the first key past
                // them is enc's prefix successor.
                let (l, h) = match op {
                    Operator::Gt => (prefix_successor(&enc), None),
                    Operator::GtEq => (Some(enc), None),
                    Operator::Lt => (None, Some(enc)),
                    Operator::LtEq => (None, prefix_successor(&enc)),
                    Operator::Eq => (Some(enc.clone()), prefix_successor(&enc)),
                    _ => (None, None),
                };
                if let Some(l) = l {
                    if lo.as_ref().is_none_or(|cur| &l > cur) {
                        lo = Some(l);
                    }
                }
                if let Some(h) = h {
                    if hi.as_ref().is_none_or(|cur| &h < cur) {
                        hi = Some(h);
                    }
                }
            }
        }
        (lo, hi)
    }

    /// Comparisons of the first primary-key column with constants in `filter`, as
    /// `(op, constant)` with the column on the left.
    fn first_key_bounds(&self, filter: &Expr) -> Vec<(Operator, ScalarValue)> {
        match self.def.primary_key.first() {
            Some(&first) => self.column_bounds(first, filter),
            None => Vec::new(),
        }
    }

    /// Comparisons of column `first` with constants in `filter` (`=`, `<`, `<=`, `>`,
    /// `>=`, `BETWEEN`), as `(op, constant)` with the column on the left.
    fn column_bounds(&self, first: usize, filter: &Expr) -> Vec<(Operator, ScalarValue)> {
        let want = self.def.columns[first].ty.arrow_type();
        let is_first = |e: &Expr| matches!(e, Expr::Column(c) if self.def.column_index(&c.name) == Some(first));
        let lit = |e: &Expr| match e {
            Expr::Literal(v, _) if v.data_type() == want && !v.is_null() => Some(v.clone()),
            _ => None,
        };
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if is_first(left) {
                    if let Some(v) = lit(right) {
                        return vec![(*op, v)];
                    }
                }
                if is_first(right) {
                    if let Some(v) = lit(left) {
                        let flipped = match op {
                            Operator::Lt => Operator::Gt,
                            Operator::LtEq => Operator::GtEq,
                            Operator::Gt => Operator::Lt,
                            Operator::GtEq => Operator::LtEq,
                            o => *o,
                        };
                        return vec![(flipped, v)];
                    }
                }
                Vec::new()
            }
            Expr::Between(b) if !b.negated && is_first(&b.expr) => {
                match (lit(&b.low), lit(&b.high)) {
                    (Some(l), Some(h)) => vec![(Operator::GtEq, l), (Operator::LtEq, h)],
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }
}

/// Every combination of the values `pinned` gives `columns` (in column order), or `None`
/// when a column has none or there are more than [`POINT_KEYS_MAX`].
fn combinations<'a>(
    pinned: &'a HashMap<usize, Vec<ScalarValue>>,
    columns: &[usize],
) -> Option<Vec<Vec<&'a ScalarValue>>> {
    let mut out: Vec<Vec<&ScalarValue>> = vec![Vec::new()];
    for c in columns {
        let vals = pinned.get(c)?;
        out = out
            .into_iter()
            .flat_map(|prefix| {
                vals.iter().map(move |v| {
                    let mut k = prefix.clone();
                    k.push(v);
                    k
                })
            })
            .collect();
        if out.len() > POINT_KEYS_MAX {
            return None;
        }
    }
    Some(out)
}

#[async_trait]
impl TableProvider for WeftTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    /// Equality on primary-key columns (a point lookup) and ranges on the first one (pruned
    /// by segment key ranges and Parquet statistics) are pushed down. When the equalities
    /// pin every key column exactly once, the scan returns exactly the matching rows and
    /// they are pushed down exactly (DataFusion plans no filter over the lookup); otherwise
    /// inexactly: DataFusion still applies them.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let constraints: Vec<Option<(usize, usize)>> = filters
            .iter()
            .map(|f| self.key_constraint(f).map(|(col, vals)| (col, vals.len())))
            .collect();
        let mut per_column: HashMap<usize, (usize, usize)> = HashMap::new();
        for (col, n) in constraints.iter().flatten() {
            let e = per_column.entry(*col).or_insert((0, *n));
            e.0 += 1;
        }
        let combinations: usize = per_column.values().map(|(_, n)| *n).product();
        let implied = self.implied(filters.iter().copied());
        let exact = !self.def.primary_key.is_empty()
            && self
                .def
                .primary_key
                .iter()
                .all(|c| per_column.get(c).is_some_and(|(count, _)| *count == 1))
            && combinations <= POINT_KEYS_MAX;
        Ok(filters
            .iter()
            .zip(&constraints)
            .map(|(f, c)| match c {
                Some(_) if exact => TableProviderFilterPushDown::Exact,
                Some(_) => TableProviderFilterPushDown::Inexact,
                None if !self.first_key_bounds(f).is_empty()
                    || self.pins_indexed_column(f, &implied)
                    || self.bounds_indexed_column(f, &implied)
                    || self.in_index_predicate(f) =>
                {
                    TableProviderFilterPushDown::Inexact
                }
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let ncols = self.def.columns.len();
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let columns: Vec<OutColumn> = projection
            .unwrap_or(&all)
            .iter()
            .map(|&i| {
                if i < ncols {
                    OutColumn::User(i)
                } else {
                    OutColumn::Key
                }
            })
            .collect();
        let mut index_used: Option<String> = None;
        let implied = self.implied(filters);
        let kind = match self.point_keys(filters) {
            Some(keys) => {
                for k in &keys {
                    self.record(ReadSpan::Key(k.clone()));
                }
                ScanKind::Points(keys)
            }
            None => match self.index_prefixes(filters, &implied) {
                Some((idx, prefixes)) => {
                    index_used = Some(idx.name.clone());
                    let keys = self.index_lookup(state, idx, prefixes).await?;
                    for k in &keys {
                        self.record(ReadSpan::Key(k.clone()));
                    }
                    ScanKind::Points(keys)
                }
                None => match self.index_range_keys(state, filters, &implied).await? {
                    Some((name, keys)) => {
                        index_used = Some(name);
                        for k in &keys {
                            self.record(ReadSpan::Key(k.clone()));
                        }
                        ScanKind::Points(keys)
                    }
                    None => {
                        self.record(ReadSpan::Table);
                        let (lo, hi) = self.key_range(filters);
                        ScanKind::Range { lo, hi }
                    }
                },
            },
        };
        let overlay: Vec<(Vec<u8>, Option<Arc<Row>>)> = match (&self.overlay, &kind) {
            (None, _) => Vec::new(),
            (Some(o), ScanKind::Points(keys)) => keys
                .iter()
                .filter_map(|k| o.get(k).map(|v| (k.clone(), v.clone())))
                .collect(),
            (Some(o), ScanKind::Range { lo, hi }) => o
                .iter()
                .filter(|(k, _)| {
                    lo.as_ref().is_none_or(|l| *k >= l) && hi.as_ref().is_none_or(|h| *k < h)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let user_schema = Arc::new(arrow::datatypes::Schema::new(
            self.schema.fields()[..ncols].to_vec(),
        ));
        let plan = self
            .storage
            .plan_scan(
                ScanRequest {
                    table_id: self.def.id,
                    table_name: match index_used {
                        Some(i) => format!("{} index={i}", self.def.name),
                        None => self.def.name.clone(),
                    },
                    read_ts: self.read_ts,
                    user_schema,
                    kind,
                    columns,
                    overlay,
                    partitions: state.config().target_partitions(),
                },
                self.def.primary_key.clone(),
            )
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(plan)
    }
}

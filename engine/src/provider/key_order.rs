//! `ORDER BY <primary key> LIMIT n` without reading the whole table: a physical optimizer
//! rule that finds a top-n sort over a weft range scan (through filters and the
//! repartitioning DataFusion adds), and, when the sort asks for the table's key order,
//! replaces it with the scan read in key order in one partition, the same filters and a
//! limit. A range scan already yields rows in key order, so the limit stops the scan after
//! the first n rows that pass the filters: keyset pagination (`WHERE id > $1 ORDER BY id
//! LIMIT 100`) reads about 100 rows, not the table.
//!
//! A sort without a limit, descending orders and orders on other columns keep DataFusion's
//! plan.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::storage::scan::MvccScanExec;

/// A filter between the sort and the scan: its predicate and the columns it passes on.
type KeptFilter = (Arc<dyn PhysicalExpr>, Option<Vec<usize>>);

/// Most rows a filter over the ordered scan gathers before passing them on.
const FILTER_BATCH_MAX: usize = 8192;

/// The rule; add it after DataFusion's own physical optimizer rules.
#[derive(Debug, Default)]
pub struct KeyOrderLimit;

impl PhysicalOptimizerRule for KeyOrderLimit {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| match in_key_order(&node)? {
            Some(replaced) => Ok(Transformed::new(replaced, true, TreeNodeRecursion::Jump)),
            None => Ok(Transformed::no(node)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "weft_key_order_limit"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` (a top-n sort, or the merge over one) as a limit over the scan in key order, or
/// `None` when it is not one the rule can replace.
fn in_key_order(node: &Arc<dyn ExecutionPlan>) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let (sort, outer_fetch) = if let Some(spm) = node.downcast_ref::<SortPreservingMergeExec>() {
        match spm.input().downcast_ref::<SortExec>() {
            Some(sort) => (sort, spm.fetch()),
            None => return Ok(None),
        }
    } else if let Some(sort) = node.downcast_ref::<SortExec>() {
        (sort, sort.fetch())
    } else {
        return Ok(None);
    };
    let (Some(fetch), Some(outer)) = (sort.fetch(), outer_fetch) else {
        return Ok(None);
    };
    // Down to the scan: filters are kept (with the columns they pass on); the rest only
    // moves batches between partitions. `columns[i]` is the scan column that output column
    // `i` of the node reached so far is.
    let mut filters: Vec<KeptFilter> = Vec::new();
    let mut maps: Vec<Vec<usize>> = Vec::new();
    let mut at = sort.input().clone();
    let scan = loop {
        if let Some(f) = at.downcast_ref::<FilterExec>() {
            let projection = f.projection().as_ref().map(|p| p.to_vec());
            if let Some(p) = &projection {
                maps.push(p.clone());
            }
            filters.push((f.predicate().clone(), projection));
            at = f.input().clone();
        } else if let Some(r) = at.downcast_ref::<RepartitionExec>() {
            at = r.input().clone();
        } else if let Some(c) = at.downcast_ref::<CoalescePartitionsExec>() {
            at = c.input().clone();
        } else if let Some(c) = at.downcast_ref::<CooperativeExec>() {
            at = c.input().clone();
        } else if let Some(scan) = at.downcast_ref::<MvccScanExec>() {
            break scan;
        } else {
            return Ok(None);
        }
    };
    // The sort's columns as the scan's.
    let mut order = Vec::with_capacity(sort.expr().len());
    for e in sort.expr().iter() {
        let Some(col) = e.expr.downcast_ref::<Column>() else {
            return Ok(None);
        };
        let mut i = col.index();
        for m in &maps {
            match m.get(i) {
                Some(&j) => i = j,
                None => return Ok(None),
            }
        }
        order.push((i, e.options.descending));
    }
    let Some(ordered) = scan.in_key_order(&order) else {
        return Ok(None);
    };
    // Filters pass rows on as soon as they have the few asked for, rather than gathering
    // full batches (which would read on far past them).
    let fetch = fetch.min(outer);
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(ordered);
    let top = filters.len();
    for (n, (predicate, projection)) in filters.into_iter().rev().enumerate() {
        // Only the top filter's output is the sort's input: only it may stop at `fetch`.
        plan = Arc::new(
            FilterExecBuilder::new(predicate, plan)
                .apply_projection(projection)?
                .with_batch_size(fetch.clamp(1, FILTER_BATCH_MAX))
                .with_fetch((n + 1 == top).then_some(fetch))
                .build()?,
        );
    }
    Ok(Some(Arc::new(GlobalLimitExec::new(plan, 0, Some(fetch)))))
}

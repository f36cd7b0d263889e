//! Where a result column comes from: the table column it is (its table's oid and the
//! column's number), carried in field metadata from the plan to RowDescription, and
//! whether an outer join can make it NULL.

use std::sync::Arc;

use arrow::datatypes::Field;

/// Field metadata naming the table column a result column is (its table's oid and the
/// column's number), sent in RowDescription as PostgreSQL does: drivers use it for a
/// column's nullability (sqlx's `query!`) and its table (JDBC's `getTableName`).
pub const ORIGIN_OID_KEY: &str = "weft.origin_oid";
pub const ORIGIN_ATTNUM_KEY: &str = "weft.origin_attnum";
/// Field metadata marking a column that comes from the inner side of an outer join (NULL
/// where the join found no row), whatever its table says.
pub const OUTER_NULLABLE_KEY: &str = "weft.outer_nullable";

/// The schema of a plan's result, each column that is a plain table column marked with its
/// origin.
pub fn schema_with_origins(
    plan: &datafusion::logical_expr::LogicalPlan,
) -> arrow::datatypes::SchemaRef {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::LogicalPlan;
    use std::collections::HashMap;
    // Which table each qualifier names: a table scanned under its own name, or an alias
    // directly over a scan.
    let mut tables: HashMap<String, Arc<weft_engine::schema::TableDef>> = HashMap::new();
    let def_of = |p: &LogicalPlan| -> Option<Arc<weft_engine::schema::TableDef>> {
        let LogicalPlan::TableScan(scan) = p else {
            return None;
        };
        let provider = datafusion::datasource::source_as_provider(&scan.source).ok()?;
        let any: &dyn std::any::Any = provider.as_ref();
        any.downcast_ref::<weft_engine::provider::WeftTable>()
            .map(|t| t.def.clone())
    };
    let mut outer: std::collections::HashSet<String> = Default::default();
    let _ = plan.apply(|node| {
        match node {
            LogicalPlan::Join(j) => {
                use datafusion::logical_expr::JoinType;
                let sides: &[&LogicalPlan] = match j.join_type {
                    JoinType::Left => &[j.right.as_ref()],
                    JoinType::Right => &[j.left.as_ref()],
                    JoinType::Full => &[j.left.as_ref(), j.right.as_ref()],
                    _ => &[],
                };
                for side in sides {
                    outer.extend(
                        side.schema()
                            .iter()
                            .filter_map(|(q, _)| q.map(|q| q.table().to_string())),
                    );
                }
            }
            LogicalPlan::TableScan(scan) => {
                if let Some(def) = def_of(node) {
                    tables.insert(scan.table_name.table().to_string(), def);
                }
            }
            LogicalPlan::SubqueryAlias(sa) => {
                if let Some(def) = def_of(sa.input.as_ref()) {
                    tables.insert(sa.alias.table().to_string(), def);
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let schema = plan.schema();
    let fields: Vec<Field> = schema
        .iter()
        .map(|(qualifier, field)| {
            let origin = qualifier
                .and_then(|q| tables.get(q.table()))
                .and_then(|def| {
                    let n = def.columns.iter().position(|c| &c.name == field.name())?;
                    Some((def.oid(), n + 1))
                });
            let mut f = field.as_ref().clone();
            if qualifier.is_some_and(|q| outer.contains(q.table())) {
                let mut md = f.metadata().clone();
                md.insert(OUTER_NULLABLE_KEY.into(), "1".into());
                f = f.with_metadata(md);
            }
            if let Some((oid, attnum)) = origin {
                let mut md = f.metadata().clone();
                md.insert(ORIGIN_OID_KEY.into(), oid.to_string());
                md.insert(ORIGIN_ATTNUM_KEY.into(), attnum.to_string());
                f = f.with_metadata(md);
            }
            f
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.as_arrow().metadata().clone(),
    ))
}

/// The schema of a RETURNING list, each item that names a column of the table marked with
/// that column as its origin.
pub fn returning_with_origins(
    schema: &arrow::datatypes::SchemaRef,
    def: &weft_engine::schema::TableDef,
    items: &[datafusion::sql::sqlparser::ast::SelectItem],
) -> arrow::datatypes::SchemaRef {
    use datafusion::sql::sqlparser::ast::{Expr, SelectItem};
    if items.len() != schema.fields().len() {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(items)
        .map(|(f, item)| {
            let column = match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => match e {
                    Expr::Identifier(id) => Some(crate::sql::names::ident_name(id)),
                    Expr::CompoundIdentifier(ids) => ids.last().map(crate::sql::names::ident_name),
                    _ => None,
                },
                _ => None,
            };
            let mut f = f.as_ref().clone();
            if let Some(n) = column.and_then(|c| def.columns.iter().position(|x| x.name == c)) {
                let mut md = f.metadata().clone();
                md.insert(ORIGIN_OID_KEY.into(), def.oid().to_string());
                md.insert(ORIGIN_ATTNUM_KEY.into(), (n + 1).to_string());
                f = f.with_metadata(md);
            }
            f
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

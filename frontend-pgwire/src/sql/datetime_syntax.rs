//! `x AT TIME ZONE z` as `weft_at_time_zone(x, z)` before planning (crate::types::datetime has
//! the function and why), with the column named `timezone` as PostgreSQL names it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, visit_expressions_mut, Statement};

/// `x AT TIME ZONE z` as `weft_at_time_zone(x, z)`.
pub fn rewrite(s: &mut Statement) {
    // PostgreSQL names such a column `timezone`.
    crate::sql::compat::name_unnamed_items(s, |e| {
        matches!(e, ast::Expr::AtTimeZone { .. }).then(|| "timezone".to_string())
    });
    let _ = visit_expressions_mut(s, |e| {
        if let ast::Expr::AtTimeZone {
            timestamp,
            time_zone,
        } = e
        {
            let args = vec![(**timestamp).clone(), (**time_zone).clone()];
            *e = crate::sql::compat::call_args("weft_at_time_zone", args);
        }
        ControlFlow::<()>::Continue(())
    });
}

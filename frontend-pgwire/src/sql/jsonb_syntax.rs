//! json aggregates and set-returning functions in a select list, rewritten before planning
//! into what DataFusion has:
//!
//! - `jsonb_agg(x [ORDER BY ...])` is `weft_jsonb_of_elems(array_agg(weft_json_elem(x)
//!   [ORDER BY ...]))`, so that DISTINCT, ORDER BY and FILTER behave as array_agg's do;
//!   `json_agg`, `jsonb_object_agg(k, v)` and `json_object_agg` likewise;
//! - `jsonb_array_elements(x)` (and `_text`, `jsonb_object_keys`, the json spellings) is
//!   `unnest(weft_jsonb_array_elements(x))`, one row per element, in a column named after
//!   the function as PostgreSQL names it.
//!
//! In FROM these functions are table functions ([`crate::types::jsonb::sets`]).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Statement,
};

use crate::sql::compat::call_args;

fn name_of(e: &Expr) -> Option<String> {
    let Expr::Function(f) = e else { return None };
    let [part] = f.name.0.as_slice() else {
        return None;
    };
    Some(part.as_ident()?.value.to_lowercase())
}

/// The internal function a set-returning function's list comes from.
fn set_function(name: &str) -> Option<&'static str> {
    Some(match name {
        "jsonb_array_elements" | "json_array_elements" => "weft_jsonb_array_elements",
        "jsonb_array_elements_text" | "json_array_elements_text" => {
            "weft_jsonb_array_elements_text"
        }
        "jsonb_object_keys" | "json_object_keys" => "weft_jsonb_object_keys",
        _ => return None,
    })
}

fn args_mut(e: &mut Expr) -> Option<&mut Vec<FunctionArg>> {
    let Expr::Function(f) = e else { return None };
    match &mut f.args {
        FunctionArguments::List(l) => Some(&mut l.args),
        _ => None,
    }
}

fn unnamed(a: &FunctionArg) -> Option<&Expr> {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    }
}

/// `f(args) -> array_agg(args)` with `wrap` applied to the argument at `at`.
fn as_array_agg(e: &Expr, at: usize, wrap: Option<&str>) -> Option<Expr> {
    let mut agg = e.clone();
    let Expr::Function(f) = &mut agg else {
        return None;
    };
    f.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![Ident::new("array_agg")]);
    let FunctionArguments::List(l) = &mut f.args else {
        return None;
    };
    let arg = unnamed(l.args.get(at)?)?.clone();
    let arg = match wrap {
        Some(w) => call_args(w, vec![arg]),
        None => arg,
    };
    l.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))];
    Some(agg)
}

fn aggregate(e: &Expr) -> Option<Expr> {
    let name = name_of(e)?;
    let n = match e {
        Expr::Function(f) => match &f.args {
            FunctionArguments::List(l) => l.args.len(),
            _ => return None,
        },
        _ => return None,
    };
    match (name.as_str(), n) {
        ("jsonb_agg" | "json_agg", 1) => {
            let outer = if name == "jsonb_agg" {
                "weft_jsonb_of_elems"
            } else {
                "weft_json_of_elems"
            };
            Some(call_args(
                outer,
                vec![as_array_agg(e, 0, Some("weft_json_elem"))?],
            ))
        }
        ("jsonb_object_agg" | "json_object_agg", 2) => {
            let outer = if name == "jsonb_object_agg" {
                "weft_jsonb_object_of_elems"
            } else {
                "weft_json_object_of_elems"
            };
            Some(call_args(
                outer,
                vec![
                    as_array_agg(e, 0, None)?,
                    as_array_agg(e, 1, Some("weft_json_elem"))?,
                ],
            ))
        }
        _ => None,
    }
}

/// Rewrites json aggregates and select-list set-returning functions in `s`.
pub fn rewrite(s: &mut Statement) {
    crate::sql::compat::name_unnamed_items(s, |e| {
        name_of(e).filter(|n| {
            set_function(n).is_some()
                || matches!(
                    n.as_str(),
                    "jsonb_agg" | "json_agg" | "jsonb_object_agg" | "json_object_agg"
                )
        })
    });
    let _ = visit_expressions_mut(s, |e| {
        if let Some(new) = aggregate(e) {
            *e = new;
        } else if let Some(inner) = name_of(e).as_deref().and_then(set_function) {
            if let Some(args) = args_mut(e) {
                let args: Vec<Expr> = args.iter().filter_map(unnamed).cloned().collect();
                *e = call_args("unnest", vec![call_args(inner, args)]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

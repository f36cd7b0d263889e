//! Types for parameters DataFusion leaves untyped: a bare `$n` passed to a function
//! (`pg_cancel_backend($1)`, `substr($1, 2)`) takes the type the function's signature asks
//! for at that position, as PostgreSQL resolves it from the function's declaration.

use std::collections::HashMap;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::types::NativeType;
use datafusion::logical_expr::{Coercion, Expr, LogicalPlan, TypeSignature, TypeSignatureClass};

/// The Arrow type a native type is carried in, for the simple ones.
fn arrow_of(n: &NativeType) -> Option<DataType> {
    Some(match n {
        NativeType::Boolean => DataType::Boolean,
        NativeType::Int8 => DataType::Int8,
        NativeType::Int16 => DataType::Int16,
        NativeType::Int32 => DataType::Int32,
        NativeType::Int64 => DataType::Int64,
        NativeType::UInt8 => DataType::UInt8,
        NativeType::UInt16 => DataType::UInt16,
        NativeType::UInt32 => DataType::UInt32,
        NativeType::UInt64 => DataType::UInt64,
        NativeType::Float32 => DataType::Float32,
        NativeType::Float64 => DataType::Float64,
        NativeType::String => DataType::Utf8,
        _ => return None,
    })
}

fn coercion_type(c: &Coercion) -> Option<DataType> {
    match c.desired_type() {
        TypeSignatureClass::Native(t) => arrow_of(t.native()),
        _ => None,
    }
}

/// The type `sig` asks for at argument `i` of `n`.
fn signature_type(sig: &TypeSignature, i: usize, n: usize) -> Option<DataType> {
    match sig {
        TypeSignature::Exact(types) if types.len() == n => types.get(i).cloned(),
        TypeSignature::Coercible(cs) if cs.len() == n => cs.get(i).and_then(coercion_type),
        TypeSignature::Uniform(k, types) if *k == n && types.len() == 1 => types.first().cloned(),
        TypeSignature::OneOf(sigs) => sigs.iter().find_map(|s| signature_type(s, i, n)),
        _ => None,
    }
}

/// Types for the placeholders passed bare to functions in `plan`, by id (`$1`).
pub fn from_function_signatures(plan: &LogicalPlan) -> HashMap<String, DataType> {
    let mut out = HashMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    let sig = &f.func.signature().type_signature;
                    for (i, a) in f.args.iter().enumerate() {
                        if let Expr::Placeholder(p) = a {
                            if p.field.is_none() {
                                if let Some(t) = signature_type(sig, i, f.args.len()) {
                                    out.entry(p.id.clone()).or_insert(t);
                                }
                            }
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    out
}

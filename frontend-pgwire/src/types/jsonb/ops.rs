//! jsonb's operators and functions as PostgreSQL defines them, on parsed values: no I/O and
//! no DataFusion here ([`super::udfs`] applies them to columns).

use super::value::{key_order, to_text, J};
use crate::error::{codes, SqlError, SqlResult};

/// 22023, PostgreSQL's code for an operation the value's shape does not allow.
fn shape(msg: &str) -> SqlError {
    SqlError::new(codes::INVALID_PARAMETER_VALUE, msg)
}

/// A step into a value: an object key or an array index (negative counts from the end).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(i64),
}

/// The element at `i` of `items`, a negative `i` counting from the end.
fn index(items: &[J], i: i64) -> Option<usize> {
    let n = items.len() as i64;
    let at = if i < 0 { n + i } else { i };
    (0..n).contains(&at).then_some(at as usize)
}

/// `v -> step`.
pub fn get<'a>(v: &'a J, step: &Step) -> Option<&'a J> {
    match (v, step) {
        (J::Obj(_), Step::Key(k)) => v.field(k),
        (J::Arr(items), Step::Index(i)) => index(items, *i).map(|i| &items[i]),
        _ => None,
    }
}

/// `v #> path`: each step a key of an object or, when it reads as an integer, an index of
/// an array.
pub fn get_path<'a>(v: &'a J, path: &[String]) -> Option<&'a J> {
    let mut at = v;
    for step in path {
        at = match at {
            J::Obj(_) => at.field(step)?,
            J::Arr(items) => {
                let i = step.trim().parse::<i64>().ok()?;
                &items[index(items, i)?]
            }
            _ => return None,
        };
    }
    Some(at)
}

/// `->>`'s text of a value: a string's contents, JSON text otherwise, SQL NULL for null.
pub fn as_text(v: &J) -> Option<String> {
    match v {
        J::Null => None,
        J::Str(s) => Some(s.clone()),
        other => Some(to_text(other)),
    }
}

/// Numbers compare by value (`1.0` equals `1`).
fn num_eq(a: &str, b: &str) -> bool {
    fn trimmed(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    trimmed(a) == trimmed(b)
}

/// Scalars are equal, and containers contain each other both ways.
pub fn equal(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Num(x), J::Num(y)) => num_eq(x, y),
        (J::Arr(x), J::Arr(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (J::Obj(x), J::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(a, b)| a.0 == b.0 && equal(&a.1, &b.1))
        }
        _ => a == b,
    }
}

fn contains_nested(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Obj(_), J::Obj(bf)) => bf
            .iter()
            .all(|(k, bv)| a.field(k).is_some_and(|av| contains_nested(av, bv))),
        (J::Arr(ai), J::Arr(bi)) => bi
            .iter()
            .all(|bv| ai.iter().any(|av| contains_nested(av, bv))),
        (J::Obj(_) | J::Arr(_), _) | (_, J::Obj(_) | J::Arr(_)) => false,
        _ => equal(a, b),
    }
}

/// `a @> b`: every key and value of `b` is in `a`, recursively; an array contains an array
/// whose every element it contains, and (at the top level only) a scalar it has.
pub fn contains(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Arr(items), J::Null | J::Bool(_) | J::Num(_) | J::Str(_)) => {
            items.iter().any(|v| equal(v, b))
        }
        _ => contains_nested(a, b),
    }
}

/// `v ? key`: an object has the key, an array has the string as an element, or the value
/// is that string.
pub fn exists(v: &J, key: &str) -> bool {
    match v {
        J::Obj(_) => v.field(key).is_some(),
        J::Arr(items) => items.iter().any(|i| matches!(i, J::Str(s) if s == key)),
        J::Str(s) => s == key,
        _ => false,
    }
}

/// `a || b`: objects merge (`b`'s keys win), arrays concatenate, and anything else is
/// wrapped in an array first.
pub fn concat(a: J, b: J) -> J {
    match (a, b) {
        (J::Obj(mut x), J::Obj(y)) => {
            x.extend(y);
            J::object(x)
        }
        (J::Arr(mut x), J::Arr(y)) => {
            x.extend(y);
            J::Arr(x)
        }
        (J::Arr(mut x), y) => {
            x.push(y);
            J::Arr(x)
        }
        (x, J::Arr(mut y)) => {
            y.insert(0, x);
            J::Arr(y)
        }
        (x, y) => J::Arr(vec![x, y]),
    }
}

/// `v - key`: an object without the key, or an array without the string elements equal to it.
pub fn delete_key(v: J, key: &str) -> SqlResult<J> {
    match v {
        J::Obj(mut fields) => {
            fields.retain(|(k, _)| k != key);
            Ok(J::Obj(fields))
        }
        J::Arr(mut items) => {
            items.retain(|i| !matches!(i, J::Str(s) if s == key));
            Ok(J::Arr(items))
        }
        _ => Err(shape("cannot delete from scalar")),
    }
}

/// `v - index`: an array without the element at the index.
pub fn delete_index(v: J, i: i64) -> SqlResult<J> {
    match v {
        J::Arr(mut items) => {
            if let Some(at) = index(&items, i) {
                items.remove(at);
            }
            Ok(J::Arr(items))
        }
        J::Obj(_) => Err(shape("cannot delete from object using integer index")),
        _ => Err(shape("cannot delete from scalar")),
    }
}

/// `v #- path`: the value without the element the path names.
pub fn delete_path(v: J, path: &[String]) -> SqlResult<J> {
    if matches!(v, J::Null | J::Bool(_) | J::Num(_) | J::Str(_)) {
        return Err(shape("cannot delete path in scalar"));
    }
    Ok(delete_path_in(v, path))
}

fn delete_path_in(v: J, path: &[String]) -> J {
    let Some((step, rest)) = path.split_first() else {
        return v;
    };
    match v {
        J::Obj(mut fields) => {
            if let Ok(at) = fields.binary_search_by(|(k, _)| key_order(k, step)) {
                if rest.is_empty() {
                    fields.remove(at);
                } else {
                    let inner = std::mem::replace(&mut fields[at].1, J::Null);
                    fields[at].1 = delete_path_in(inner, rest);
                }
            }
            J::Obj(fields)
        }
        J::Arr(mut items) => {
            if let Some(at) = step
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|i| index(&items, i))
            {
                if rest.is_empty() {
                    items.remove(at);
                } else {
                    let inner = std::mem::replace(&mut items[at], J::Null);
                    items[at] = delete_path_in(inner, rest);
                }
            }
            J::Arr(items)
        }
        other => other,
    }
}

/// `jsonb_set(v, path, new, create_missing)`: the value with the element at `path` replaced
/// by `new`, or added where only the last step is missing and `create_missing` is set (an
/// index before the start prepends, one past the end appends).
pub fn set(v: J, path: &[String], new: J, create_missing: bool) -> SqlResult<J> {
    if matches!(v, J::Null | J::Bool(_) | J::Num(_) | J::Str(_)) {
        return Err(shape("cannot set path in scalar"));
    }
    set_in(v, path, new, create_missing, 0)
}

fn set_in(v: J, path: &[String], new: J, create: bool, depth: usize) -> SqlResult<J> {
    let Some((step, rest)) = path.split_first() else {
        return Ok(new);
    };
    match v {
        J::Obj(mut fields) => {
            match fields.binary_search_by(|(k, _)| key_order(k, step)) {
                Ok(at) => {
                    let inner = std::mem::replace(&mut fields[at].1, J::Null);
                    fields[at].1 = set_in(inner, rest, new, create, depth + 1)?;
                }
                Err(at) if rest.is_empty() && create => fields.insert(at, (step.clone(), new)),
                Err(_) => {}
            }
            Ok(J::Obj(fields))
        }
        J::Arr(mut items) => {
            let Ok(i) = step.trim().parse::<i64>() else {
                return Err(SqlError::new(
                    codes::INVALID_TEXT_REPRESENTATION,
                    format!(
                        "path element at position {} is not an integer: \"{step}\"",
                        depth + 1
                    ),
                ));
            };
            match index(&items, i) {
                Some(at) => {
                    let inner = std::mem::replace(&mut items[at], J::Null);
                    items[at] = set_in(inner, rest, new, create, depth + 1)?;
                }
                None if rest.is_empty() && create => {
                    if i < 0 {
                        items.insert(0, new);
                    } else {
                        items.push(new);
                    }
                }
                None => {}
            }
            Ok(J::Arr(items))
        }
        other => Ok(other),
    }
}

/// `jsonb_strip_nulls(v)`: objects without their null-valued fields, recursively.
pub fn strip_nulls(v: J) -> J {
    match v {
        J::Obj(fields) => J::Obj(
            fields
                .into_iter()
                .filter(|(_, v)| *v != J::Null)
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        J::Arr(items) => J::Arr(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// `jsonb_pretty(v)`: four-space indents, one element per line (an empty container's
/// brackets on two lines too, as PostgreSQL prints them).
pub fn pretty(v: &J) -> String {
    fn go(v: &J, depth: usize, out: &mut String) {
        let pad = |d: usize| "    ".repeat(d);
        match v {
            J::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    go(item, depth + 1, out);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            J::Obj(fields) => {
                out.push_str("{\n");
                for (i, (k, item)) in fields.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    super::value::write_str(out, k);
                    out.push_str(": ");
                    go(item, depth + 1, out);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
            other => out.push_str(&to_text(other)),
        }
    }
    let mut out = String::new();
    go(v, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::jsonb::value::parse;

    fn j(s: &str) -> J {
        parse(s).unwrap()
    }

    #[test]
    fn containment_as_postgresql_defines_it() {
        for (a, b, want) in [
            (r#"{"a":1,"b":{"c":[1,2]}}"#, r#"{"b":{"c":[2]}}"#, true),
            (r#"{"a":1}"#, r#"{"a":1.0}"#, true),
            (r#"{"a":1}"#, r#"{"a":2}"#, false),
            (r#"["a","b"]"#, r#""a""#, true),
            (r#"[["a"]]"#, r#""a""#, false),
            (r#"[1,[2,3]]"#, r#"[[3]]"#, true),
            (r#"[1,2]"#, r#"[]"#, true),
            (r#"{"a":[1]}"#, r#"{"a":1}"#, false),
        ] {
            assert_eq!(contains(&j(a), &j(b)), want, "{a} @> {b}");
        }
    }

    #[test]
    fn set_and_delete() {
        let v = j(r#"{"a":[1,2],"b":1}"#);
        let s = |p: &[&str], n: &str, c| {
            let path: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            to_text(&set(v.clone(), &path, j(n), c).unwrap())
        };
        assert_eq!(s(&["a", "0"], "9", true), r#"{"a": [9, 2], "b": 1}"#);
        assert_eq!(s(&["a", "5"], "9", true), r#"{"a": [1, 2, 9], "b": 1}"#);
        assert_eq!(s(&["a", "-5"], "9", true), r#"{"a": [9, 1, 2], "b": 1}"#);
        assert_eq!(s(&["c"], "9", false), r#"{"a": [1, 2], "b": 1}"#);
        assert_eq!(s(&["c", "d"], "9", true), r#"{"a": [1, 2], "b": 1}"#);
        assert_eq!(s(&["c"], "9", true), r#"{"a": [1, 2], "b": 1, "c": 9}"#);
        assert!(set(j("1"), &["a".into()], j("1"), true).is_err());
        let d = delete_path(v.clone(), &["a".into(), "-1".into()]).unwrap();
        assert_eq!(to_text(&d), r#"{"a": [1], "b": 1}"#);
        assert_eq!(
            to_text(&delete_key(j(r#"["a","b","a"]"#), "a").unwrap()),
            r#"["b"]"#
        );
        assert!(delete_index(v, 0).is_err());
    }

    #[test]
    fn concat_wraps_scalars() {
        let c = |a: &str, b: &str| to_text(&concat(j(a), j(b)));
        assert_eq!(c(r#"{"a":1}"#, r#"{"a":2,"b":3}"#), r#"{"a": 2, "b": 3}"#);
        assert_eq!(c("[1]", "2"), "[1, 2]");
        assert_eq!(c("1", "[2]"), "[1, 2]");
        assert_eq!(c("1", "2"), "[1, 2]");
        assert_eq!(c(r#"{"a":1}"#, "[2]"), r#"[{"a": 1}, 2]"#);
    }
}

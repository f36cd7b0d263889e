//! `MOVE` and FETCH with a negative count, which sqlparser cannot read, read as a FETCH
//! with a marked INTO target; the session's cursors (`crate::session::cursors`) read the
//! mark back.

use datafusion::sql::sqlparser::ast::ObjectName;

/// FETCH ... INTO targets that mark what sqlparser cannot read (`crate::session::cursors`): a MOVE, and a
/// negative count (`ABSOLUTE -2`). No user's FETCH has an INTO target weft accepts.
pub const MARK: &str = "weft";

/// A query that is one MOVE statement, or one FETCH with a negative count (psql and
/// drivers send them alone), as a FETCH sqlparser reads: `MOVE` becomes `FETCH`, `-n`
/// becomes `n`, and an `INTO "weft move neg"`-style target says what was changed.
pub fn readable_fetch(sql: &str) -> Option<String> {
    let t = sql.trim_start();
    // Every query passes here: decide on its first word before anything else.
    let starts = |w: &str| t.get(..w.len()).is_some_and(|h| h.eq_ignore_ascii_case(w));
    if !starts("move") && !starts("fetch") {
        return None;
    }
    let t = t.trim_end().trim_end_matches(';').trim_end();
    if t.contains(';') {
        return None;
    }
    let mut words: Vec<&str> = t.split_whitespace().collect();
    let first = words.first()?;
    let is_move = first.eq_ignore_ascii_case("move");
    if !is_move && !first.eq_ignore_ascii_case("fetch") {
        return None;
    }
    let negative = words.iter().position(|w| {
        w.strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    });
    if !is_move && negative.is_none() {
        return None;
    }
    if let Some(i) = negative {
        words[i] = &words[i][1..];
    }
    words[0] = "FETCH";
    Some(format!(
        "{} INTO \"{MARK}{}{}\"",
        words.join(" "),
        if is_move { " move" } else { "" },
        if negative.is_some() { " neg" } else { "" }
    ))
}

/// What a FETCH's INTO target says (see [`readable_fetch`]): `Some((is_move, negative))`
/// for weft's marks, `None` for a target of the user's.
pub fn marks(into: Option<&ObjectName>) -> Option<(bool, bool)> {
    let Some(into) = into else {
        return Some((false, false));
    };
    let [part] = into.0.as_slice() else {
        return None;
    };
    let words: Vec<&str> = part.as_ident()?.value.split(' ').collect();
    if words.first() != Some(&MARK) {
        return None;
    }
    Some((words.contains(&"move"), words.contains(&"neg")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_and_negative_counts_are_read_as_fetch() {
        assert_eq!(
            readable_fetch("MOVE 3 IN c;").as_deref(),
            Some("FETCH 3 IN c INTO \"weft move\"")
        );
        assert_eq!(
            readable_fetch("fetch absolute -2 from c").as_deref(),
            Some("FETCH absolute 2 from c INTO \"weft neg\"")
        );
        assert!(readable_fetch("FETCH 2 FROM c").is_none());
        assert!(readable_fetch("SELECT 1").is_none());
        assert!(readable_fetch("move 1 in c; select 1").is_none());
    }
}

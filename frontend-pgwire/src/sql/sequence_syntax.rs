//! `CREATE SEQUENCE` options in any order, as PostgreSQL takes them.
//!
//! The SQL parser reads the options only in one order (`AS`, `INCREMENT`, `MINVALUE`,
//! `MAXVALUE`, `START`, `CACHE`, `CYCLE`, `OWNED BY`); PostgreSQL takes them in any, and
//! pg_dump writes `START WITH ... INCREMENT BY ...`. The statement's options are put in the
//! parser's order before parsing. Anything not understood is left alone, for the parser to
//! report.

/// The order the parser reads options in.
const ORDER: [&str; 8] = [
    "AS",
    "INCREMENT",
    "MINVALUE",
    "MAXVALUE",
    "START",
    "CACHE",
    "CYCLE",
    "OWNED",
];

/// `sql` with its options in the parser's order, if it is a `CREATE SEQUENCE` whose options
/// are out of that order.
pub fn in_parser_order(sql: &str) -> Option<String> {
    let body = sql.trim().trim_end_matches(';').trim_end();
    let words: Vec<&str> = body.split_whitespace().collect();
    let upper = |i: usize| words.get(i).map(|w| w.to_ascii_uppercase());
    if upper(0)? != "CREATE" {
        return None;
    }
    let mut at = 1;
    if matches!(upper(at)?.as_str(), "TEMP" | "TEMPORARY") {
        at += 1;
    }
    if upper(at)? != "SEQUENCE" {
        return None;
    }
    at += 1;
    if upper(at)? == "IF" {
        at += 3; // IF NOT EXISTS
    }
    let head_end = at + 1; // the name (not quoted with blanks)
    if head_end > words.len() {
        return None;
    }
    let options = ordered_options(&words[head_end..])?;
    if options.iter().zip(&words[head_end..]).all(|(a, b)| a == b) {
        return None; // already in order
    }
    let mut out = words[..head_end].join(" ");
    for w in options {
        out.push(' ');
        out.push_str(w);
    }
    Some(out)
}

/// Sequence options (`START WITH 1 INCREMENT BY 1 ...`, as words) in the parser's order;
/// `None` if one is not understood or repeated.
pub fn ordered_options<'a>(words: &[&'a str]) -> Option<Vec<&'a str>> {
    let upper = |i: usize| words.get(i).map(|w| w.to_ascii_uppercase());
    // Group the words into options: (rank in ORDER, words).
    let mut options: Vec<(usize, Vec<&str>)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = upper(i)?;
        let (key, len) = match w.as_str() {
            "AS" | "MINVALUE" | "MAXVALUE" | "CACHE" => (w.as_str(), 2),
            "INCREMENT" | "START" => {
                let with = matches!(upper(i + 1).as_deref(), Some("BY" | "WITH"));
                (w.as_str(), if with { 3 } else { 2 })
            }
            "CYCLE" => ("CYCLE", 1),
            "OWNED" => ("OWNED", 3),
            "NO" => match upper(i + 1)?.as_str() {
                "MINVALUE" => ("MINVALUE", 2),
                "MAXVALUE" => ("MAXVALUE", 2),
                "CYCLE" => ("CYCLE", 2),
                _ => return None,
            },
            _ => return None,
        };
        let rank = ORDER.iter().position(|k| *k == key)?;
        if i + len > words.len() || options.iter().any(|(r, _)| *r == rank) {
            return None;
        }
        options.push((rank, words[i..i + len].to_vec()));
        i += len;
    }
    options.sort_by_key(|(rank, _)| *rank);
    Some(options.into_iter().flat_map(|(_, ws)| ws).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_dump_order_is_reordered() {
        assert_eq!(
            in_parser_order(
                "CREATE SEQUENCE public.t_id_seq\n    AS integer\n    START WITH 1\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1;"
            )
            .as_deref(),
            Some("CREATE SEQUENCE public.t_id_seq AS integer INCREMENT BY 1 NO MINVALUE NO MAXVALUE START WITH 1 CACHE 1")
        );
        assert_eq!(
            in_parser_order("create temp sequence if not exists s cycle start 5 minvalue -3")
                .as_deref(),
            Some("create temp sequence if not exists s minvalue -3 start 5 cycle")
        );
    }

    #[test]
    fn others_are_left_alone() {
        assert_eq!(
            in_parser_order("CREATE SEQUENCE s INCREMENT 2 START 1"),
            None
        );
        assert_eq!(in_parser_order("CREATE TABLE s (a int)"), None);
        assert_eq!(in_parser_order("CREATE SEQUENCE s START 1 BOGUS 2"), None);
        assert_eq!(in_parser_order("CREATE SEQUENCE s START 1 START 2"), None);
    }
}

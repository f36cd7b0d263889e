//! COPY's boolean options as PostgreSQL spells them: `(FREEZE on, HEADER 1)`.
//!
//! The SQL parser reads a boolean option's value only as TRUE or FALSE; PostgreSQL also
//! takes on/off, 1/0 and yes/no (pgbench's `copy ... with (freeze on)`). The values in the
//! option list of a COPY are put in the parser's words before parsing; anything else is
//! left alone, for the parser to report.

/// The options whose value is a boolean.
const BOOLEAN_OPTIONS: [&str; 2] = ["FREEZE", "HEADER"];

/// `sql` with its COPY option list's boolean values spelled TRUE or FALSE, if it is a COPY
/// whose option list spells one otherwise.
pub fn parser_booleans(sql: &str) -> Option<String> {
    let trimmed = sql.trim_start();
    if !trimmed.get(..4)?.eq_ignore_ascii_case("copy") {
        return None;
    }
    // The option list is the statement's last parenthesized group.
    let body = sql.trim_end().trim_end_matches(';').trim_end();
    if !body.ends_with(')') {
        return None;
    }
    let open = body.rfind('(')?;
    let list = &body[open + 1..body.len() - 1];
    if list.contains(['\'', '"', '(']) {
        return None;
    }
    let mut changed = false;
    let options: Vec<String> = list
        .split(',')
        .map(|option| {
            let words: Vec<&str> = option.split_whitespace().collect();
            match words.as_slice() {
                [name, value] if BOOLEAN_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(name)) => {
                    let v = match value.to_ascii_lowercase().as_str() {
                        "on" | "1" | "yes" => Some("TRUE"),
                        "off" | "0" | "no" => Some("FALSE"),
                        _ => None,
                    };
                    match v {
                        Some(v) => {
                            changed = true;
                            format!(" {name} {v}")
                        }
                        None => option.to_string(),
                    }
                }
                _ => option.to_string(),
            }
        })
        .collect();
    changed.then(|| format!("{}({})", &body[..open], options.join(",")))
}

#[cfg(test)]
mod tests {
    use super::parser_booleans;

    #[test]
    fn boolean_values_are_spelled_for_the_parser() {
        assert_eq!(
            parser_booleans("copy pgbench_accounts from stdin with (freeze on)").as_deref(),
            Some("copy pgbench_accounts from stdin with ( freeze TRUE)")
        );
        assert_eq!(
            parser_booleans("COPY t TO STDOUT (FORMAT csv, HEADER 0);").as_deref(),
            Some("COPY t TO STDOUT (FORMAT csv, HEADER FALSE)")
        );
        for untouched in [
            "COPY t FROM STDIN (FORMAT csv, HEADER true)",
            "COPY t FROM STDIN",
            "SELECT 1",
            "COPY t FROM STDIN (DELIMITER ',')",
            "COPY (SELECT 1) TO STDOUT",
        ] {
            assert_eq!(parser_booleans(untouched), None, "{untouched}");
        }
    }
}

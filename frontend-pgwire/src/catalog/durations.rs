//! PostgreSQL's time settings (`statement_timeout`, `lock_timeout`, ...) as text and as
//! milliseconds.

/// A PostgreSQL time setting in milliseconds: a number with an optional unit (`us`, `ms`,
/// `s`, `min`, `h`, `d`; milliseconds when there is none). `None` if it is not one.
pub(crate) fn parse_duration_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('\'');
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * factor;
    (ms.is_finite() && ms >= 0.0 && ms < i32::MAX as f64).then(|| ms.round() as u64)
}

/// How PostgreSQL shows a time setting: the largest unit that divides it.
pub(crate) fn duration_text(ms: u64) -> String {
    match ms {
        0 => "0".into(),
        _ if ms.is_multiple_of(86_400_000) => format!("{}d", ms / 86_400_000),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}min", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

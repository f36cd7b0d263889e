//! PostgreSQL's text output of floats, timestamps and intervals: pure functions of the
//! value, shared by the wire encoder and the casts to text that must print the same.

/// PostgreSQL's text output of a float: the shortest exact digits, in exponent form when
/// the exponent is below -4 or at least the type's decimal precision (15 or 6).
pub fn pg_float_text(v: f64, precision: i32, shortest: String) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // `shortest` is Rust's `{:e}`: shortest round-trip digits, e.g. "1.5e-5".
    let (mantissa, exp) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
        let negative = mantissa.starts_with('-');
        let point = exp + 1; // digits before the decimal point
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if point <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point as usize - digits.len()));
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
        out
    }
}

/// PostgreSQL's text output of a timestamp (UTC for timestamptz).
pub fn pg_timestamp_text(nanos: i128, with_tz: bool) -> String {
    let micros = nanos.div_euclid(1000);
    let secs = micros.div_euclid(1_000_000) as i64;
    let frac = micros.rem_euclid(1_000_000) as u32;
    let Some(dt) = chrono::DateTime::from_timestamp(secs, frac * 1000) else {
        return nanos.to_string();
    };
    let mut s = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    if with_tz {
        s.push_str("+00");
    }
    s
}

/// PostgreSQL's text output of an interval (IntervalStyle postgres): years, months and
/// days, then the time with its fraction's trailing zeros trimmed; a field after a negative
/// one carries its sign (`-1 days +02:00:00`).
pub fn pg_interval_text(months: i32, days: i32, nanos: i64) -> String {
    let mut out = String::new();
    let mut before_negative = false;
    let mut zero = true;
    let (years, mons) = (months / 12, months % 12);
    for (v, unit) in [(years, "year"), (mons, "mon"), (days, "day")] {
        if v == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let plus = if before_negative && v > 0 { "+" } else { "" };
        let plural = if v == 1 { "" } else { "s" };
        out.push_str(&format!("{plus}{v} {unit}{plural}"));
        before_negative = v < 0;
        zero = false;
    }
    let micros = nanos / 1000;
    if !zero && micros == 0 {
        return out;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    let sign = if micros < 0 {
        "-"
    } else if before_negative {
        "+"
    } else {
        ""
    };
    let m = micros.unsigned_abs();
    let (h, rest) = (m / 3_600_000_000, m % 3_600_000_000);
    let (min, rest) = (rest / 60_000_000, rest % 60_000_000);
    let (sec, frac) = (rest / 1_000_000, rest % 1_000_000);
    out.push_str(&format!("{sign}{h:02}:{min:02}:{sec:02}"));
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f8(v: f64) -> String {
        pg_float_text(v, 15, format!("{v:e}"))
    }

    #[test]
    fn intervals_print_as_postgres_prints_them() {
        let h = 3_600_000_000_000i64;
        assert_eq!(pg_interval_text(0, 0, 0), "00:00:00");
        assert_eq!(
            pg_interval_text(14, 1, 2 * h),
            "1 year 2 mons 1 day 02:00:00"
        );
        assert_eq!(pg_interval_text(0, -1, 0), "-1 days");
        assert_eq!(pg_interval_text(0, -1, 2 * h), "-1 days +02:00:00");
        assert_eq!(pg_interval_text(0, 1, -h), "1 day -01:00:00");
        assert_eq!(pg_interval_text(0, 0, 36 * h + 500_000_000), "36:00:00.5");
        assert_eq!(pg_interval_text(-1, 2, 0), "-1 mons +2 days");
    }

    #[test]
    fn floats_print_as_postgres_prints_them() {
        assert_eq!(f8(3.0), "3");
        assert_eq!(f8(1.5), "1.5");
        assert_eq!(f8(-2.25), "-2.25");
        assert_eq!(f8(0.0001), "0.0001");
        assert_eq!(f8(0.00001), "1e-05");
        assert_eq!(f8(1e15), "1e+15");
        assert_eq!(f8(123456789012345.0), "123456789012345");
        assert_eq!(f8(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f8(f64::NAN), "NaN");
        assert_eq!(
            pg_float_text(1.25f32 as f64, 6, format!("{:e}", 1.25f32)),
            "1.25"
        );
        assert_eq!(pg_float_text(1e6, 6, format!("{:e}", 1e6f32)), "1e+06");
    }

    #[test]
    fn timestamps_trim_fractions() {
        assert_eq!(pg_timestamp_text(0, false), "1970-01-01 00:00:00");
        assert_eq!(
            pg_timestamp_text(1_500_000_000, true),
            "1970-01-01 00:00:01.5+00"
        );
        assert_eq!(
            pg_timestamp_text(-1_000, false),
            "1969-12-31 23:59:59.999999"
        );
    }
}

//! jsonb's stored form, as PostgreSQL prints it: object keys sorted (shorter keys first, then
//! bytewise), a repeated key keeping its last value, `", "` and `": "` separators, and numbers
//! in numeric's canonical form (`1e2` is `100`, `1.50` stays `1.50`). `json` keeps its input
//! text; `jsonb` values are stored in this form so that they print and compare as in
//! PostgreSQL.

use crate::error::{codes, SqlError, SqlResult};

/// A parsed JSON value. An object's fields are kept in jsonb's order (shorter keys first,
/// then bytewise), each key once: [`J::object`] builds one.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    /// A number in numeric's canonical form (`1e2` is `100`, `1.50` stays `1.50`).
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// jsonb's key order: shorter keys first, then bytewise.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

impl J {
    /// An object of `fields` in jsonb's form: the last of repeated keys wins, then keys
    /// are sorted in [`key_order`].
    pub fn object(mut fields: Vec<(String, J)>) -> J {
        let mut kept: Vec<(String, J)> = Vec::with_capacity(fields.len());
        while let Some((k, v)) = fields.pop() {
            if !kept.iter().any(|(seen, _)| *seen == k) {
                kept.push((k, v));
            }
        }
        kept.sort_by(|a, b| key_order(&a.0, &b.0));
        J::Obj(kept)
    }

    /// The value of `key` in an object.
    pub fn field(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(fields) => fields
                .binary_search_by(|(k, _)| key_order(k, key))
                .ok()
                .map(|i| &fields[i].1),
            _ => None,
        }
    }

    /// jsonb_typeof's name for the value's kind.
    pub fn type_name(&self) -> &'static str {
        match self {
            J::Null => "null",
            J::Bool(_) => "boolean",
            J::Num(_) => "number",
            J::Str(_) => "string",
            J::Arr(_) => "array",
            J::Obj(_) => "object",
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

type Res<T> = Result<T, String>;

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Res<T> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn value(&mut self, depth: usize) -> Res<J> {
        if depth > 1000 {
            return self.err("nesting too deep");
        }
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return self.err("unexpected end of input");
        };
        match c {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(J::Obj(fields));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return self.err("expected a string key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return self.err("expected \":\"");
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    fields.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(J::object(fields));
                        }
                        _ => return self.err("expected \",\" or \"}\""),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(J::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(J::Arr(items));
                        }
                        _ => return self.err("expected \",\" or \"]\""),
                    }
                }
            }
            b'"' => Ok(J::Str(self.string()?)),
            b't' => self.word("true", J::Bool(true)),
            b'f' => self.word("false", J::Bool(false)),
            b'n' => self.word("null", J::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.err("unexpected character"),
        }
    }

    fn word(&mut self, w: &str, v: J) -> Res<J> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            self.err("invalid token")
        }
    }

    fn number(&mut self) -> Res<J> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i - from
        };
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return self.err("invalid number");
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return self.err("invalid number");
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return self.err("invalid number");
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
        Ok(J::Num(canonical_number(text)))
    }

    fn string(&mut self) -> Res<String> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated string");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return self.err("invalid Unicode surrogate pair");
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err("invalid Unicode surrogate pair");
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            if cp == 0 {
                                return self.err("\\u0000 cannot be converted to text");
                            }
                            match char::from_u32(cp) {
                                Some(ch) => out.push(ch),
                                None => return self.err("invalid Unicode escape"),
                            }
                        }
                        _ => return self.err("invalid escape"),
                    }
                }
                0..=0x1f => return self.err("control character in string"),
                _ => {
                    // A run of ordinary characters, copied at once: it ends at an ASCII
                    // byte, a character boundary, so only the run is validated (checking
                    // the rest of the input per character would be quadratic).
                    let start = self.i;
                    while self
                        .s
                        .get(self.i)
                        .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
                    {
                        self.i += 1;
                    }
                    let run =
                        std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                    out.push_str(run);
                }
            }
        }
    }

    fn hex4(&mut self) -> Res<u32> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.err("invalid Unicode escape");
        };
        let h = std::str::from_utf8(h).map_err(|e| e.to_string())?;
        let v = u32::from_str_radix(h, 16).or_else(|_| self.err("invalid Unicode escape"))?;
        self.i += 4;
        Ok(v)
    }
}

/// A JSON number as numeric prints it: the exponent applied, the scale kept
/// (`1.50e1` is `15.0`, `1e-2` is `0.01`, `-0` is `0`).
pub fn canonical_number(text: &str) -> String {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], body[p + 1..].parse::<i64>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int}{frac}");
    // value = digits * 10^(exp - frac.len()); scale = max(0, frac.len() - exp)
    let point = int.len() as i64 + exp; // position of the decimal point in `digits`
    let scale = (frac.len() as i64 - exp).max(0) as usize;
    let (mut ip, mut fp) = if point <= 0 {
        (
            String::new(),
            format!("{}{}", "0".repeat((-point) as usize), digits),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{}{}", digits, "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    fp.truncate(scale.min(fp.len()));
    while fp.len() < scale {
        fp.push('0');
    }
    let trimmed = ip.trim_start_matches('0');
    ip = if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    };
    let zero = ip == "0" && fp.chars().all(|c| c == '0');
    let mut out = String::new();
    if neg && !zero {
        out.push('-');
    }
    out.push_str(&ip);
    if !fp.is_empty() {
        out.push('.');
        out.push_str(&fp);
    }
    out
}

pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, v: &J) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => write_str(out, s),
        J::Arr(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, v);
            }
            out.push(']');
        }
        J::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write(out, v);
            }
            out.push('}');
        }
    }
}

/// The text of a value in jsonb's form.
pub fn to_text(v: &J) -> String {
    let mut out = String::new();
    write(&mut out, v);
    out
}

/// A JSON text parsed; text that is not JSON is 22P02, with where and why in the detail.
pub fn parse(text: &str) -> SqlResult<J> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let parsed = p.value(0).and_then(|v| {
        p.ws();
        if p.i != p.s.len() {
            return p.err("trailing characters");
        }
        Ok(v)
    });
    parsed.map_err(|why| {
        SqlError::new(
            codes::INVALID_TEXT_REPRESENTATION,
            "invalid input syntax for type json",
        )
        .with_detail(why)
    })
}

/// The jsonb form of a JSON text (22P02 if it is not JSON).
pub fn canonical(text: &str) -> SqlResult<String> {
    parse(text).map(|v| to_text(&v))
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn jsonb_prints_as_postgresql_does() {
        for (input, want) in [
            (r#"{"b": [1,2], "a": null}"#, r#"{"a": null, "b": [1, 2]}"#),
            (
                r#"{"aa":1,"b":2,"a":3,"b":4}"#,
                r#"{"a": 3, "b": 4, "aa": 1}"#,
            ),
            (
                "[1e2, 1.50, -0, 0.1e1, 1E-2, 12.5e-1, -3]",
                "[100, 1.50, 0, 1, 0.01, 1.25, -3]",
            ),
            (r#" "t\u00e9\n\"x\"" "#, "\"té\\n\\\"x\\\"\""),
            ("{}", "{}"),
            ("[]", "[]"),
            ("true", "true"),
        ] {
            assert_eq!(canonical(input).unwrap(), want, "{input}");
        }
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "1.",
            "\"\\u0000\"",
            "nul",
            "{\"a\" 1}",
            "1 2",
        ] {
            assert!(canonical(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn long_strings_parse_in_linear_time() {
        // Non-ASCII characters among ASCII ones, in one string and in many.
        let doc = |mb: usize| {
            let unit = "abcdéfgh\\n€xyz";
            let one = unit.repeat((mb << 20) / unit.len());
            format!("{{\"s\": \"{one}\", \"a\": [\"{unit}\", \"{unit}\"]}}")
        };
        let (two, sixteen) = (doc(2), doc(16));
        crate::types::assert_linear("jsonb", |mb| {
            super::parse(if mb == 2 { &two } else { &sixteen }).unwrap();
        });
    }
}

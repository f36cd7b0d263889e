//! COPY's data formats: PostgreSQL's text and CSV layouts (delimiter, NULL string, header,
//! quote and escape) as the statement's options set them, and one line of output in them.

use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

use crate::error::{codes, SqlError, SqlResult};

/// How the data is laid out.
#[derive(Debug, Clone)]
pub struct CopyFormat {
    pub csv: bool,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

impl CopyFormat {
    pub fn from_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> SqlResult<Self> {
        let mut csv = false;
        let (mut delimiter, mut null, mut header, mut quote, mut escape) =
            (None, None, false, None, None);
        let byte = |c: char, what: &str| -> SqlResult<u8> {
            if c.is_ascii() {
                Ok(c as u8)
            } else {
                Err(SqlError::new(
                    codes::FEATURE_NOT_SUPPORTED,
                    format!("COPY {what} must be a single one-byte character"),
                ))
            }
        };
        for o in options {
            match o {
                CopyOption::Format(f) => match f.value.to_lowercase().as_str() {
                    "text" => csv = false,
                    "csv" => csv = true,
                    "binary" => {
                        return Err(SqlError::unsupported(
                            "COPY in binary format is not supported; use text or csv",
                        ))
                    }
                    other => {
                        return Err(SqlError::new(
                            codes::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ))
                    }
                },
                CopyOption::Delimiter(c) => delimiter = Some(byte(*c, "delimiter")?),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = Some(byte(*c, "quote")?),
                CopyOption::Escape(c) => escape = Some(byte(*c, "escape")?),
                CopyOption::Encoding(e) => {
                    let e = e.to_uppercase().replace(['-', '_'], "");
                    if e != "UTF8" {
                        return Err(SqlError::unsupported(format!(
                            "COPY encoding {e} is not supported; weft speaks UTF8"
                        )));
                    }
                }
                CopyOption::Freeze(_) => {}
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COPY option {other} is not supported"
                    )))
                }
            }
        }
        for o in legacy {
            match o {
                CopyLegacyOption::Binary => {
                    return Err(SqlError::unsupported(
                        "COPY in binary format is not supported; use text or csv",
                    ))
                }
                CopyLegacyOption::Delimiter(c) => delimiter = Some(byte(*c, "delimiter")?),
                CopyLegacyOption::Null(s) => null = Some(s.clone()),
                CopyLegacyOption::Csv(opts) => {
                    csv = true;
                    for c in opts {
                        match c {
                            CopyLegacyCsvOption::Header => header = true,
                            CopyLegacyCsvOption::Quote(q) => quote = Some(byte(*q, "quote")?),
                            CopyLegacyCsvOption::Escape(q) => escape = Some(byte(*q, "escape")?),
                            other => {
                                return Err(SqlError::unsupported(format!(
                                    "COPY option {other} is not supported"
                                )))
                            }
                        }
                    }
                }
                CopyLegacyOption::Header => header = true,
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COPY option {other} is not supported"
                    )))
                }
            }
        }
        if header && !csv {
            return Err(SqlError::unsupported(
                "COPY HEADER is available only in CSV mode",
            ));
        }
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let quote = quote.unwrap_or(b'"');
        if delimiter == b'\n' || delimiter == b'\r' || (!csv && delimiter == b'\\') {
            return Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
                "COPY delimiter cannot be newline, carriage return or backslash",
            ));
        }
        if csv && delimiter == quote {
            return Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
                "COPY delimiter and quote must be different",
            ));
        }
        Ok(CopyFormat {
            csv,
            delimiter,
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            header,
            quote,
            escape: escape.unwrap_or(quote),
        })
    }

    // ------------------------------------------------------------------ output

    /// One output line for a row of values in PostgreSQL's text representation.
    pub fn line(&self, values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            match v {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(v) if self.csv => self.csv_field(v, &mut out),
                Some(v) => {
                    for &b in v.iter() {
                        match b {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            _ if b == self.delimiter => {
                                out.push(b'\\');
                                out.push(b);
                            }
                            _ => out.push(b),
                        }
                    }
                }
            }
        }
        out.push(b'\n');
        out
    }

    fn csv_field(&self, v: &[u8], out: &mut Vec<u8>) {
        let needs = v.is_empty() && self.null.is_empty()
            || v == self.null.as_bytes()
            || v.iter()
                .any(|&b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r')
            || v == b"\\.";
        if !needs {
            out.extend_from_slice(v);
            return;
        }
        out.push(self.quote);
        for &b in v {
            if b == self.quote || b == self.escape {
                out.push(self.escape);
            }
            out.push(b);
        }
        out.push(self.quote);
    }
}

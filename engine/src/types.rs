//! The SQL types weft stores, how each is represented in Arrow, and how it is named to
//! PostgreSQL clients.
//!
//! A few PostgreSQL types have no Arrow type of their own (uuid, json, jsonb, varchar(n),
//! char(n)); they are stored as Utf8 and their PostgreSQL type travels in the Arrow field's
//! metadata under [`PG_TYPE_KEY`], so that the wire protocol reports the right type OID.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType as AstType, ExactNumberInfo, TimezoneInfo,
};
use serde::{Deserialize, Serialize};

/// Arrow field metadata key carrying the PostgreSQL type name of a column whose Arrow type
/// alone does not say it (uuid, json, jsonb, varchar, bpchar).
pub const PG_TYPE_KEY: &str = "weft.pg_type";

/// Arrow field metadata key carrying the declared length of a `character(n)` column. Its
/// values are stored without trailing blanks (which PostgreSQL's `bpchar` treats as
/// insignificant in comparisons, grouping, ordering, `length()` and casts to text), and
/// padded back to this length only on output.
pub const CHAR_LENGTH_KEY: &str = "weft.char_length";

/// The largest precision a `numeric` column can have (Arrow's Decimal128).
pub const NUMERIC_PRECISION_MAX: u8 = 38;
/// Scale used for `numeric` declared without precision and scale.
pub const NUMERIC_DEFAULT_SCALE: i8 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Numeric {
        precision: u8,
        scale: i8,
    },
    Text,
    Varchar {
        max_chars: Option<u32>,
    },
    Char {
        chars: u32,
    },
    Boolean,
    Bytea,
    Date,
    Timestamp,
    Timestamptz,
    Uuid,
    Json,
    Jsonb,
    /// A one-dimensional array of the element type (`integer[]`), an Arrow list.
    Array(Box<SqlType>),
}

/// The name of a list's element field.
pub const ARRAY_ITEM: &str = "item";

impl SqlType {
    pub fn arrow_type(&self) -> DataType {
        match self {
            SqlType::SmallInt => DataType::Int16,
            SqlType::Integer => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::Text
            | SqlType::Varchar { .. }
            | SqlType::Char { .. }
            | SqlType::Uuid
            | SqlType::Json
            | SqlType::Jsonb => DataType::Utf8,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Bytea => DataType::Binary,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::Timestamptz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
            }
            SqlType::Array(elem) => DataType::List(Arc::new(elem.arrow_field(ARRAY_ITEM, true))),
        }
    }

    /// The PostgreSQL type name, as `format_type` prints it.
    pub fn pg_name(&self) -> String {
        match self {
            SqlType::SmallInt => "smallint".into(),
            SqlType::Integer => "integer".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Real => "real".into(),
            SqlType::Double => "double precision".into(),
            SqlType::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            SqlType::Text => "text".into(),
            SqlType::Varchar { max_chars: Some(n) } => format!("character varying({n})"),
            SqlType::Varchar { max_chars: None } => "character varying".into(),
            SqlType::Char { chars } => format!("character({chars})"),
            SqlType::Boolean => "boolean".into(),
            SqlType::Bytea => "bytea".into(),
            SqlType::Date => "date".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::Timestamptz => "timestamp with time zone".into(),
            SqlType::Uuid => "uuid".into(),
            SqlType::Json => "json".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Array(elem) => format!("{}[]", elem.pg_name()),
        }
    }

    /// The wire type for columns whose Arrow type is not enough (see [`PG_TYPE_KEY`]).
    fn wire_override(&self) -> Option<&'static str> {
        match self {
            SqlType::Uuid => Some("uuid"),
            SqlType::Json => Some("json"),
            SqlType::Jsonb => Some("jsonb"),
            SqlType::Varchar { .. } => Some("varchar"),
            SqlType::Char { .. } => Some("bpchar"),
            _ => None,
        }
    }

    pub fn arrow_field(&self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, self.arrow_type(), nullable);
        let mut md = HashMap::new();
        if let Some(pg) = self.wire_override() {
            md.insert(PG_TYPE_KEY.to_string(), pg.to_string());
        }
        if let SqlType::Char { chars } = self {
            md.insert(CHAR_LENGTH_KEY.to_string(), chars.to_string());
        }
        if md.is_empty() {
            field
        } else {
            field.with_metadata(md)
        }
    }

    /// Maps a parsed SQL type to a weft type; `Err` says whether the type is one weft does
    /// not have or a modifier is out of range.
    pub fn from_ast(ty: &AstType) -> Result<SqlType, TypeError> {
        use AstType as T;
        let unsupported = || {
            Err(TypeError::Unsupported(format!(
                "type {ty} is not supported"
            )))
        };
        Ok(match ty {
            T::SmallInt(_) | T::Int2(_) => SqlType::SmallInt,
            T::Int(_) | T::Integer(_) | T::Int4(_) => SqlType::Integer,
            T::BigInt(_) | T::Int8(_) => SqlType::BigInt,
            T::Real | T::Float4 => SqlType::Real,
            T::Float(info) => match info {
                ExactNumberInfo::Precision(p) if *p <= 24 => SqlType::Real,
                _ => SqlType::Double,
            },
            T::Double(_) | T::DoublePrecision | T::Float8 | T::Float64 => SqlType::Double,
            T::Numeric(info) | T::Decimal(info) | T::Dec(info) => match info {
                ExactNumberInfo::None => SqlType::Numeric {
                    precision: NUMERIC_PRECISION_MAX,
                    scale: NUMERIC_DEFAULT_SCALE,
                },
                ExactNumberInfo::Precision(p) => numeric(*p, 0)?,
                ExactNumberInfo::PrecisionAndScale(p, s) => numeric(*p, *s)?,
            },
            T::Text | T::String(_) => SqlType::Text,
            T::Varchar(len) | T::CharacterVarying(len) | T::CharVarying(len) => SqlType::Varchar {
                max_chars: char_len(len)?,
            },
            T::Char(len) | T::Character(len) => SqlType::Char {
                chars: char_len(len)?.unwrap_or(1),
            },
            T::Boolean | T::Bool => SqlType::Boolean,
            T::Bytea => SqlType::Bytea,
            T::Date => SqlType::Date,
            T::Timestamp(_, tz) => match tz {
                TimezoneInfo::None | TimezoneInfo::WithoutTimeZone => SqlType::Timestamp,
                TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => SqlType::Timestamptz,
            },
            T::TimestampNtz(_) => SqlType::Timestamp,
            T::Uuid => SqlType::Uuid,
            T::JSON => SqlType::Json,
            T::JSONB => SqlType::Jsonb,
            T::Array(
                ArrayElemTypeDef::SquareBracket(inner, _)
                | ArrayElemTypeDef::AngleBracket(inner)
                | ArrayElemTypeDef::Parenthesis(inner),
            ) => match SqlType::from_ast(inner)? {
                // PostgreSQL's int[][] is the same type as int[].
                SqlType::Array(elem) => SqlType::Array(elem),
                elem => SqlType::Array(Box::new(elem)),
            },
            T::Custom(name, args) if args.is_empty() => {
                match name.to_string().to_ascii_lowercase().as_str() {
                    "timestamptz" => SqlType::Timestamptz,
                    "int2" => SqlType::SmallInt,
                    "int4" => SqlType::Integer,
                    "int8" => SqlType::BigInt,
                    "float4" => SqlType::Real,
                    "float8" => SqlType::Double,
                    "bpchar" => SqlType::Char { chars: 1 },
                    "json" => SqlType::Json,
                    "jsonb" => SqlType::Jsonb,
                    "serial" | "bigserial" | "smallserial" => {
                        return Err(TypeError::Unsupported(format!(
                            "type {ty} is not supported yet; use an explicit key"
                        )))
                    }
                    _ => return unsupported(),
                }
            }
            _ => return unsupported(),
        })
    }
}

/// Why a SQL type cannot be a weft type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeError {
    /// A type weft does not have (SQLSTATE 0A000).
    Unsupported(String),
    /// A type modifier out of its range, such as `numeric(0)` or `varchar(0)` (22023, as
    /// PostgreSQL reports it).
    InvalidModifier(String),
}

impl std::fmt::Display for TypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeError::Unsupported(m) | TypeError::InvalidModifier(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TypeError {}

fn numeric(precision: u64, scale: i64) -> Result<SqlType, TypeError> {
    if precision == 0 || precision > NUMERIC_PRECISION_MAX as u64 {
        return Err(TypeError::InvalidModifier(format!(
            "NUMERIC precision {precision} must be between 1 and {NUMERIC_PRECISION_MAX}"
        )));
    }
    if scale < 0 || scale as u64 > precision {
        return Err(TypeError::InvalidModifier(format!(
            "NUMERIC scale {scale} must be between 0 and precision {precision}"
        )));
    }
    Ok(SqlType::Numeric {
        precision: precision as u8,
        scale: scale as i8,
    })
}

fn char_len(len: &Option<CharacterLength>) -> Result<Option<u32>, TypeError> {
    match len {
        None => Ok(None),
        Some(CharacterLength::Max) => Ok(None),
        Some(CharacterLength::IntegerLength { length, .. }) => {
            if *length == 0 || *length > 10_485_760 {
                Err(TypeError::InvalidModifier(format!(
                    "length for type varchar must be between 1 and 10485760, got {length}"
                )))
            } else {
                Ok(Some(*length as u32))
            }
        }
    }
}

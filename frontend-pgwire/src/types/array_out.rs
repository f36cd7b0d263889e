//! Arrays' text output, as PostgreSQL writes it: `{1,NULL,3}`, `{a,"b c","q\"x"}`, `{}`.
//!
//! `array::text` (an explicit cast, or a function that takes text) is rewritten by
//! [`crate::types::arrays::ArrayCasts`] into `weft_array_out`; Arrow's own cast would write
//! `[1, , 3]`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::types::pg_text::{pg_float_text, pg_timestamp_text};

/// Each element's text as PostgreSQL's output function writes it (`None` for NULL).
fn element_texts(values: &ArrayRef) -> Result<Vec<Option<String>>> {
    use arrow::datatypes::{
        Float32Type, Float64Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    let n = values.len();
    let each = |f: &dyn Fn(usize) -> String| -> Vec<Option<String>> {
        (0..n).map(|i| values.is_valid(i).then(|| f(i))).collect()
    };
    Ok(match values.data_type() {
        DataType::Boolean => {
            let a = values.as_boolean();
            each(&|i| if a.value(i) { "t" } else { "f" }.to_string())
        }
        DataType::Float64 => {
            let a = values.as_primitive::<Float64Type>();
            each(&|i| pg_float_text(a.value(i), 15, format!("{:e}", a.value(i))))
        }
        DataType::Float32 => {
            let a = values.as_primitive::<Float32Type>();
            each(&|i| pg_float_text(a.value(i) as f64, 6, format!("{:e}", a.value(i))))
        }
        DataType::Timestamp(unit, tz) => {
            let tz = tz.is_some();
            let nanos = |i: usize| -> i128 {
                match unit {
                    TimeUnit::Second => {
                        values.as_primitive::<TimestampSecondType>().value(i) as i128
                            * 1_000_000_000
                    }
                    TimeUnit::Millisecond => {
                        values.as_primitive::<TimestampMillisecondType>().value(i) as i128
                            * 1_000_000
                    }
                    TimeUnit::Microsecond => {
                        values.as_primitive::<TimestampMicrosecondType>().value(i) as i128 * 1000
                    }
                    TimeUnit::Nanosecond => {
                        values.as_primitive::<TimestampNanosecondType>().value(i) as i128
                    }
                }
            };
            each(&|i| pg_timestamp_text(nanos(i), tz))
        }
        DataType::Binary => {
            let a = values.as_binary::<i32>();
            each(&|i| {
                let mut s = String::from("\\x");
                for b in a.value(i) {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            })
        }
        _ => {
            // Integers, numerics (at their scale), dates and text: Arrow's text is
            // PostgreSQL's.
            let text = arrow::compute::cast(values, &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            text.iter().map(|v| v.map(str::to_string)).collect()
        }
    })
}

/// An element as it appears inside an array's text: quoted when it is empty, `NULL` in
/// any case, or holds a brace, comma, quote, backslash or white space.
fn quoted(s: &str, out: &mut String) {
    let needs = s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !needs {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// A column of lists as PostgreSQL's text of each array.
pub fn lists_text(lists: &ArrayRef) -> Result<ArrayRef> {
    let list = lists.as_list_opt::<i32>().ok_or_else(|| {
        DataFusionError::Internal(format!("{} is not an array", lists.data_type()))
    })?;
    let texts = element_texts(list.values())?;
    let offsets = list.value_offsets();
    let mut out = StringBuilder::new();
    let mut s = String::new();
    for row in 0..list.len() {
        if list.is_null(row) {
            out.append_null();
            continue;
        }
        s.clear();
        s.push('{');
        let (lo, hi) = (offsets[row] as usize, offsets[row + 1] as usize);
        for (k, t) in texts[lo..hi].iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            match t {
                Some(t) => quoted(t, &mut s),
                None => s.push_str("NULL"),
            }
        }
        s.push('}');
        out.append_value(&s);
    }
    Ok(Arc::new(out.finish()))
}

pub const UDF_NAME: &str = "weft_array_out";

/// `weft_array_out(array)`: the array's text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayOut {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayOut {
    fn name(&self) -> &str {
        UDF_NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let lists = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(lists_text(&lists)?))
    }
}

pub fn array_out_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(ArrayOut {
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::ListArray;
    use arrow::datatypes::Int32Type;

    fn text_of(a: ArrayRef) -> Vec<Option<String>> {
        let t = lists_text(&a).unwrap();
        t.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn arrays_are_written_as_postgresql_writes_them() {
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            Some(vec![]),
            None,
        ]);
        assert_eq!(
            text_of(Arc::new(ints)),
            vec![Some("{1,NULL,3}".into()), Some("{}".into()), None]
        );
        let values = arrow::array::StringArray::from(vec![
            Some("a"),
            Some("b c"),
            Some("q\"x\\"),
            Some(""),
            Some("NULL"),
            None,
        ]);
        let field = Arc::new(arrow::datatypes::Field::new("item", DataType::Utf8, true));
        let texts = ListArray::new(
            field,
            arrow::buffer::OffsetBuffer::from_lengths([6]),
            Arc::new(values),
            None,
        );
        assert_eq!(
            text_of(Arc::new(texts)),
            vec![Some(r#"{a,"b c","q\"x\\","","NULL",NULL}"#.into())]
        );
        let bools = ListArray::new(
            Arc::new(arrow::datatypes::Field::new(
                "item",
                DataType::Boolean,
                true,
            )),
            arrow::buffer::OffsetBuffer::from_lengths([2]),
            Arc::new(arrow::array::BooleanArray::from(vec![true, false])),
            None,
        );
        assert_eq!(text_of(Arc::new(bools)), vec![Some("{t,f}".into())]);
    }
}

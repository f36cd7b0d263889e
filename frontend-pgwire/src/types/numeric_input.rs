//! `numeric`'s input for a whole column of text, as COPY reads it.
//!
//! Arrow's string-to-decimal cast builds two `String`s per value (it splits the text and
//! formats the digits back before parsing them), which made it the largest single cost of
//! loading a table with decimal columns. Here a value in the plain spelling (`-12.5`: a
//! sign, digits, a point and at most the column's scale of fraction digits) is read
//! straight into its integer. Anything else (blanks, an exponent, more fraction digits than
//! the scale, which must be rounded, or a value past the precision) sends the whole column
//! to Arrow's cast, which rounds half away from zero as PostgreSQL does and reports the
//! errors: the answer is the same either way, only its cost differs.

use arrow::array::{Array, Decimal128Array, StringArray};

/// A plain decimal spelling as the integer of a `Decimal128(precision, scale)`, or `None`
/// when it is not plain or does not fit.
pub fn plain_decimal(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let scale = u32::try_from(scale).ok()?;
    let mut value: i128 = 0;
    let (mut whole, mut fraction, mut point) = (0u32, 0u32, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                value = value.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
                if point {
                    fraction += 1;
                } else {
                    whole += 1;
                }
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if whole == 0 || (point && fraction == 0) || fraction > scale {
        return None;
    }
    let value = value.checked_mul(10i128.checked_pow(scale - fraction)?)?;
    if value >= 10i128.checked_pow(u32::from(precision))? {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// The column read as `Decimal128(precision, scale)`, or `None` when a value is not plain
/// (the caller then casts the column with Arrow).
pub fn plain_decimal_column(
    text: &StringArray,
    precision: u8,
    scale: i8,
) -> Option<Decimal128Array> {
    let mut values = Vec::with_capacity(text.len());
    for i in 0..text.len() {
        values.push(if text.is_null(i) {
            0
        } else {
            plain_decimal(text.value(i), precision, scale)?
        });
    }
    Decimal128Array::new(values.into(), text.nulls().cloned())
        .with_precision_and_scale(precision, scale)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::ArrayRef;
    use arrow::datatypes::DataType;
    use std::sync::Arc;

    /// Arrow's cast, the reference this fast path must agree with.
    fn arrow_cast(text: &str, precision: u8, scale: i8) -> Option<i128> {
        let a: ArrayRef = Arc::new(StringArray::from(vec![text]));
        let options = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        let out = arrow::compute::cast_with_options(
            &a,
            &DataType::Decimal128(precision, scale),
            &options,
        )
        .ok()?;
        Some(out.as_any().downcast_ref::<Decimal128Array>()?.value(0))
    }

    #[test]
    fn plain_spellings_read_as_arrow_reads_them() {
        for (text, p, s) in [
            ("0", 15, 2),
            ("-0", 15, 2),
            ("12.5", 15, 2),
            ("-12.05", 15, 2),
            ("+7", 15, 2),
            ("0.06", 15, 2),
            ("33203.72", 15, 2),
            ("9999999999999.99", 15, 2),
            ("123", 38, 10),
            ("1.0000000001", 38, 10),
            ("99999999999999999999999999999999999999", 38, 0),
        ] {
            let fast = plain_decimal(text, p, s);
            assert!(fast.is_some(), "{text} should be plain");
            assert_eq!(fast, arrow_cast(text, p, s), "{text} as ({p},{s})");
        }
    }

    #[test]
    fn anything_else_goes_to_arrow() {
        for (text, p, s) in [
            ("", 15, 2),
            ("-", 15, 2),
            (".5", 15, 2),
            ("5.", 15, 2),
            (" 5", 15, 2),
            ("5 ", 15, 2),
            ("1e3", 15, 2),
            ("1.005", 15, 2),
            ("1.2.3", 15, 2),
            ("x", 15, 2),
            ("NaN", 15, 2),
            ("10000000000000", 15, 2),
            ("999999999999999999999999999999999999999", 38, 0),
        ] {
            assert_eq!(plain_decimal(text, p, s), None, "{text:?}");
        }
    }

    #[test]
    fn a_column_with_nulls_and_one_odd_value() {
        let plain = StringArray::from(vec![Some("1.5"), None, Some("-2")]);
        let col = plain_decimal_column(&plain, 10, 2).unwrap();
        assert_eq!(col.value(0), 150);
        assert!(col.is_null(1));
        assert_eq!(col.value(2), -200);
        assert_eq!(col.data_type(), &DataType::Decimal128(10, 2));
        let odd = StringArray::from(vec![Some("1.5"), Some("1.005")]);
        assert!(plain_decimal_column(&odd, 10, 2).is_none());
    }
}

//! Order-preserving ("memcomparable") encoding of primary keys.
//!
//! Encoded keys compare bytewise in the same order as the values they encode, so a
//! `BTreeMap<Vec<u8>, _>` or a Parquet file sorted by `_weft_key` is sorted by primary key.
//! Each component is self-delimiting, so composite keys are plain concatenations.

use datafusion::scalar::ScalarValue;

use crate::error::{EngineError, EngineResult};

/// Appends the encoding of one key component.
pub fn encode_value(out: &mut Vec<u8>, v: &ScalarValue) -> EngineResult<()> {
    match v {
        ScalarValue::Boolean(Some(b)) => out.push(*b as u8),
        ScalarValue::Int8(Some(x)) => out.push((*x as u8) ^ 0x80),
        ScalarValue::Int16(Some(x)) => out.extend_from_slice(&((*x as u16) ^ 0x8000).to_be_bytes()),
        ScalarValue::Int32(Some(x)) => {
            out.extend_from_slice(&((*x as u32) ^ (1 << 31)).to_be_bytes())
        }
        ScalarValue::Int64(Some(x)) | ScalarValue::TimestampMicrosecond(Some(x), _) => {
            out.extend_from_slice(&((*x as u64) ^ (1 << 63)).to_be_bytes())
        }
        ScalarValue::Date32(Some(x)) => {
            out.extend_from_slice(&((*x as u32) ^ (1 << 31)).to_be_bytes())
        }
        ScalarValue::Float32(Some(f)) => {
            let bits = f.to_bits();
            let enc = if bits >> 31 == 1 {
                !bits
            } else {
                bits ^ (1 << 31)
            };
            out.extend_from_slice(&enc.to_be_bytes());
        }
        ScalarValue::Float64(Some(f)) => {
            let bits = f.to_bits();
            let enc = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.extend_from_slice(&enc.to_be_bytes());
        }
        ScalarValue::Decimal128(Some(x), _, _) => {
            out.extend_from_slice(&((*x as u128) ^ (1 << 127)).to_be_bytes())
        }
        ScalarValue::Utf8(Some(s)) => encode_bytes(out, s.as_bytes()),
        ScalarValue::Binary(Some(b)) => encode_bytes(out, b),
        v if v.is_null() => {
            return Err(EngineError::InvalidValue(
                "a primary key column cannot be null".into(),
            ))
        }
        other => {
            return Err(EngineError::InvalidValue(format!(
                "values of type {} cannot be part of a primary key",
                other.data_type()
            )))
        }
    }
    Ok(())
}

/// Bytes are escaped so that the terminator sorts below any content: 0x00 becomes
/// 0x00 0xFF, and the value ends with 0x00 0x01.
fn encode_bytes(out: &mut Vec<u8>, b: &[u8]) {
    for &byte in b {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Encodes a whole key from its component values, in key order.
pub fn encode_key(values: &[&ScalarValue]) -> EngineResult<Vec<u8>> {
    let mut out = Vec::with_capacity(16);
    for v in values {
        encode_value(&mut out, v)?;
    }
    Ok(out)
}

/// The key of a catalog row: the table name.
pub fn catalog_key(table_name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(table_name.len() + 2);
    encode_bytes(&mut out, table_name.as_bytes());
    out
}

/// The smallest byte string greater than every string that starts with `p` (`None`: there
/// is none, `p` is all 0xFF).
pub fn prefix_successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut v = p.to_vec();
    while let Some(last) = v.pop() {
        if last != 0xFF {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: ScalarValue) -> Vec<u8> {
        encode_key(&[&v]).unwrap()
    }

    proptest! {
        #[test]
        fn ints_keep_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), enc(ScalarValue::Int64(Some(a))).cmp(&enc(ScalarValue::Int64(Some(b)))));
        }
        #[test]
        fn i32_keep_order(a: i32, b: i32) {
            prop_assert_eq!(a.cmp(&b), enc(ScalarValue::Int32(Some(a))).cmp(&enc(ScalarValue::Int32(Some(b)))));
        }
        #[test]
        fn floats_keep_order(a in -1e300f64..1e300, b in -1e300f64..1e300) {
            prop_assert_eq!(a.partial_cmp(&b).unwrap(), enc(ScalarValue::Float64(Some(a))).cmp(&enc(ScalarValue::Float64(Some(b)))));
        }
        #[test]
        fn strings_keep_order(a: Vec<u8>, b: Vec<u8>) {
            prop_assert_eq!(a.cmp(&b), enc(ScalarValue::Binary(Some(a.clone()))).cmp(&enc(ScalarValue::Binary(Some(b.clone())))));
        }
        #[test]
        fn composite_keys_keep_order(a1: String, a2: i32, b1: String, b2: i32) {
            let ka = encode_key(&[&ScalarValue::Utf8(Some(a1.clone())), &ScalarValue::Int32(Some(a2))]).unwrap();
            let kb = encode_key(&[&ScalarValue::Utf8(Some(b1.clone())), &ScalarValue::Int32(Some(b2))]).unwrap();
            prop_assert_eq!((a1, a2).cmp(&(b1, b2)), ka.cmp(&kb));
        }
    }

    #[test]
    fn null_is_not_a_key() {
        assert!(encode_key(&[&ScalarValue::Int32(None)]).is_err());
    }
}

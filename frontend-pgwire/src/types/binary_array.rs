//! PostgreSQL's binary array format, read into the array's text form for parameter types
//! arrow-pg cannot decode (oid[], uuid[]), and written for result columns it cannot encode
//! (uuid[]).
//!
//! The format: dimensions (i32), a has-NULLs flag (i32), the element type's oid (u32),
//! then per dimension its length and lower bound (i32 each), then each element as a
//! length (i32, -1 for NULL) and its bytes, all big-endian.

/// A one-dimensional (or empty) binary array of 4-byte unsigned elements (oid[]) as its
/// text form, `{1007,23,NULL}`. `None` when the bytes are not such an array.
pub fn int4_array_text(b: &[u8]) -> Option<String> {
    array_text(b, |v| {
        let v: [u8; 4] = v.try_into().ok()?;
        Some(u32::from_be_bytes(v).to_string())
    })
}

/// A one-dimensional (or empty) binary uuid[] as its text form,
/// `{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}`. `None` when the bytes are not one.
pub fn uuid_array_text(b: &[u8]) -> Option<String> {
    array_text(b, |v| {
        Some(uuid::Uuid::from_slice(v).ok()?.hyphenated().to_string())
    })
}

/// A one-dimensional (or empty) binary array as its text form, each element read by
/// `element` (whose text must need no quoting). `None` when the bytes are not such an
/// array, or an element is not readable.
fn array_text(b: &[u8], element: impl Fn(&[u8]) -> Option<String>) -> Option<String> {
    let mut at = 0usize;
    let mut next = |n: usize| -> Option<&[u8]> {
        let s = b.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let int = |s: &[u8]| i32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    let ndim = int(next(4)?);
    let _has_nulls = next(4)?;
    let _elem = next(4)?;
    let len = match ndim {
        0 => 0,
        1 => {
            let n = int(next(4)?);
            let _lower = next(4)?;
            usize::try_from(n).ok()?
        }
        _ => return None,
    };
    let mut items = Vec::with_capacity(len.min(1024));
    for _ in 0..len {
        match int(next(4)?) {
            -1 => items.push("NULL".to_string()),
            n => items.push(element(next(usize::try_from(n).ok()?)?)?),
        }
    }
    if next(1).is_some() {
        return None;
    }
    Some(format!("{{{}}}", items.join(",")))
}

/// A one-dimensional array in the binary format: `elem` is the element type's oid, each
/// element already in its binary form (`None` for NULL). An empty array has no dimension.
pub fn encode_array(elem: u32, items: &[Option<&[u8]>]) -> Vec<u8> {
    let bytes: usize = items.iter().flatten().map(|v| v.len()).sum();
    let mut b = Vec::with_capacity(20 + 4 * items.len() + bytes);
    let ndim = i32::from(!items.is_empty());
    b.extend_from_slice(&ndim.to_be_bytes());
    b.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
    b.extend_from_slice(&elem.to_be_bytes());
    if items.is_empty() {
        return b;
    }
    b.extend_from_slice(&(items.len() as i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    for item in items {
        match item {
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(items: &[Option<u32>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&i32::from(items.iter().any(Option::is_none)).to_be_bytes());
        b.extend_from_slice(&26u32.to_be_bytes());
        b.extend_from_slice(&(items.len() as i32).to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        for i in items {
            match i {
                Some(v) => {
                    b.extend_from_slice(&4i32.to_be_bytes());
                    b.extend_from_slice(&v.to_be_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b
    }

    #[test]
    fn reads_oid_arrays() {
        assert_eq!(
            int4_array_text(&encode(&[Some(1007), None, Some(4_000_000_000)])).as_deref(),
            Some("{1007,NULL,4000000000}")
        );
        let empty = [0i32, 0, 26]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<_>>();
        assert_eq!(int4_array_text(&empty).as_deref(), Some("{}"));
        let mut long = encode(&[Some(1)]);
        long.push(0);
        assert_eq!(int4_array_text(&long), None, "trailing bytes");
        assert_eq!(
            int4_array_text(&encode(&[Some(1)])[..20]),
            None,
            "cut short"
        );
        assert_eq!(int4_array_text(b"{1,2}"), None);
    }

    #[test]
    fn uuid_arrays_round_trip() {
        let u = uuid::Uuid::parse_str("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        let b = encode_array(2950, &[Some(u.as_bytes()), None]);
        assert_eq!(
            uuid_array_text(&b).as_deref(),
            Some("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}")
        );
        assert_eq!(
            uuid_array_text(&encode_array(2950, &[])).as_deref(),
            Some("{}")
        );
        // A 4-byte element is no uuid.
        assert_eq!(uuid_array_text(&encode(&[Some(1)])), None);
        // The oid[] reader refuses 16-byte elements.
        assert_eq!(int4_array_text(&b), None);
    }
}

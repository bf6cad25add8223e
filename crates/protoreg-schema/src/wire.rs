//! Field-level reading and patching of encoded protobuf messages, for the parts prost-types
//! drops (editions fields, feature extensions in options).

/// Appends a varint field to the message found at `path` (pairs of field number and index,
/// as in source info: `[4, 0, 3, 1]` is the second nested message of the first message).
/// `None` when the path does not exist.
pub fn append_at_path(raw: &[u8], path: &[i32], field: u32, value: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() + 4);
    if path.is_empty() {
        out.extend_from_slice(raw);
        prost::encoding::encode_key(field, prost::encoding::WireType::Varint, &mut out);
        prost::encoding::encode_varint(value, &mut out);
        return Some(out);
    }
    let (want_tag, want_index) = (*path.first()? as u32, *path.get(1)? as usize);
    let mut index = 0;
    let mut found = false;
    for (t, bytes, _) in fields(raw)? {
        if t == want_tag {
            if index == want_index {
                let inner = append_at_path(payload(bytes)?, &path[2..], field, value)?;
                prost::encoding::bytes::encode(t, &inner, &mut out);
                found = true;
                index += 1;
                continue;
            }
            index += 1;
        }
        out.extend_from_slice(bytes);
    }
    found.then_some(out)
}

/// The payload of one whole length-delimited field (as [`fields`] returns it): its bytes
/// after the key and the length.
pub fn payload(field: &[u8]) -> Option<&[u8]> {
    let mut body = field;
    prost::encoding::decode_key(&mut body).ok()?;
    prost::encoding::decode_varint(&mut body).ok()?;
    Some(body)
}

/// Splits an encoded message into its top-level fields: `(field number, whole field bytes,
/// payload for varint fields)`. `None` when the bytes are not a well-formed message.
/// One top-level field: number, the whole encoded field, and the value of varint fields.
pub type Field<'a> = (u32, &'a [u8], Option<u64>);

pub fn fields(raw: &[u8]) -> Option<Vec<Field<'_>>> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let mut out = Vec::new();
    let mut buf = raw;
    while !buf.is_empty() {
        let start_len = buf.len();
        let (tag, wt) = decode_key(&mut buf).ok()?;
        let mut value = None;
        match wt {
            WireType::Varint => value = Some(decode_varint(&mut buf).ok()?),
            WireType::LengthDelimited => {
                let n = decode_varint(&mut buf).ok()? as usize;
                if n > buf.len() {
                    return None;
                }
                buf = &buf[n..];
            }
            WireType::SixtyFourBit if buf.len() >= 8 => buf = &buf[8..],
            WireType::ThirtyTwoBit if buf.len() >= 4 => buf = &buf[4..],
            _ => return None,
        }
        out.push((
            tag,
            &raw[raw.len() - start_len..raw.len() - buf.len()],
            value,
        ));
    }
    Some(out)
}

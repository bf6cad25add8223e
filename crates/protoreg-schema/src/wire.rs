//! Field-level reading of encoded protobuf messages, for the parts prost-types drops
//! (editions fields, feature extensions in options).

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

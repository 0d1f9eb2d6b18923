//! BER → DER re-encoding for the CMS envelopes AWS KMS returns.
//!
//! Real KMS sends `CiphertextForRecipient` in BER: indefinite lengths on the
//! outer structures and the encrypted content as a *constructed* `[0]` holding
//! OCTET STRING segments (observed in KMS output published in
//! RustCrypto/formats issue #779; LocalStack sends DER). The `cms`/`der`
//! crates accept DER only, and no maintained Rust crate converts BER to DER,
//! so this small converter does: it turns indefinite lengths into definite
//! ones, flattens constructed OCTET STRINGs, and flattens the constructed
//! `[0] IMPLICIT OCTET STRING` of an `EncryptedContentInfo` (the one place in
//! EnvelopedData where an implicitly tagged string can be segmented). The
//! result is then parsed strictly by `cms`.
//!
//! Bounded: the input size bounds the work, nesting is limited to
//! [`MAX_DEPTH`], and every read is checked.

/// Deepest nesting accepted (EnvelopedData needs about 11).
pub const MAX_DEPTH: usize = 32;

const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OCTET_STRING_CONSTRUCTED: u8 = 0x24;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0_CONSTRUCTED: u8 = 0xa0;
const TAG_CONTEXT_0_PRIMITIVE: u8 = 0x80;

/// Why the input is not acceptable BER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    /// The input ends inside an element.
    #[error("BER input is truncated at byte {0}")]
    Truncated(usize),
    /// A length form that BER does not allow here, or too large.
    #[error("bad BER length at byte {0}")]
    BadLength(usize),
    /// An indefinite length on a primitive element.
    #[error("indefinite length on a primitive element at byte {0}")]
    IndefinitePrimitive(usize),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("BER nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Bytes after the single top-level element.
    #[error("{0} trailing bytes after the BER element")]
    TrailingBytes(usize),
    /// A segmented string holds something other than OCTET STRINGs.
    #[error("constructed OCTET STRING at byte {0} contains a non-OCTET STRING segment")]
    BadSegment(usize),
}

enum Content<'a> {
    Primitive(&'a [u8]),
    Constructed(Vec<Node<'a>>),
}

struct Node<'a> {
    offset: usize,
    tag: &'a [u8],
    content: Content<'a>,
}

impl Node<'_> {
    fn first_tag_byte(&self) -> u8 {
        self.tag.first().copied().unwrap_or(0)
    }
}

/// Re-encodes one BER element (and everything in it) as DER.
pub fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, BerError> {
    let mut parser = Parser { input, pos: 0 };
    let node = parser.element(0)?;
    if parser.pos != input.len() {
        return Err(BerError::TrailingBytes(input.len() - parser.pos));
    }
    let mut out = Vec::with_capacity(input.len());
    encode(&node, &mut out)?;
    Ok(out)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn byte(&mut self) -> Result<u8, BerError> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or(BerError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BerError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(BerError::BadLength(self.pos))?;
        let slice = self
            .input
            .get(self.pos..end)
            .ok_or(BerError::Truncated(self.pos))?;
        self.pos = end;
        Ok(slice)
    }

    fn at_end_of_contents(&self) -> bool {
        self.input.get(self.pos..self.pos + 2) == Some(&[0, 0][..])
    }

    fn element(&mut self, depth: usize) -> Result<Node<'a>, BerError> {
        if depth > MAX_DEPTH {
            return Err(BerError::TooDeep);
        }
        let offset = self.pos;
        let first = self.byte()?;
        if first & 0x1f == 0x1f {
            // High tag number: base-128 continuation bytes.
            loop {
                if self.pos - offset > 5 {
                    return Err(BerError::BadLength(offset));
                }
                if self.byte()? & 0x80 == 0 {
                    break;
                }
            }
        }
        let tag = self
            .input
            .get(offset..self.pos)
            .ok_or(BerError::Truncated(offset))?;
        let constructed = first & 0x20 != 0;
        let len_pos = self.pos;
        let len_byte = self.byte()?;
        let length = match len_byte {
            0x80 => None,
            b if b < 0x80 => Some(usize::from(b)),
            b => {
                let n = usize::from(b & 0x7f);
                if n > 4 {
                    return Err(BerError::BadLength(len_pos));
                }
                let mut len = 0usize;
                for _ in 0..n {
                    len = (len << 8) | usize::from(self.byte()?);
                }
                Some(len)
            }
        };
        let content = match (constructed, length) {
            (false, None) => return Err(BerError::IndefinitePrimitive(offset)),
            (false, Some(len)) => Content::Primitive(self.take(len)?),
            (true, Some(len)) => {
                let body = self.take(len)?;
                let mut inner = Parser {
                    input: body,
                    pos: 0,
                };
                let mut children = Vec::new();
                while inner.pos < body.len() {
                    let mut child = inner.element(depth + 1)?;
                    // Offsets in errors are relative to the whole input.
                    child.offset += offset;
                    children.push(child);
                }
                Content::Constructed(children)
            }
            (true, None) => {
                let mut children = Vec::new();
                while !self.at_end_of_contents() {
                    if self.pos >= self.input.len() {
                        return Err(BerError::Truncated(self.pos));
                    }
                    children.push(self.element(depth + 1)?);
                }
                self.pos += 2;
                Content::Constructed(children)
            }
        };
        Ok(Node {
            offset,
            tag,
            content,
        })
    }
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Concatenates the segments of a (possibly nested) segmented OCTET STRING.
fn flatten_octets(node: &Node<'_>, out: &mut Vec<u8>) -> Result<(), BerError> {
    match (&node.content, node.first_tag_byte()) {
        (Content::Primitive(bytes), TAG_OCTET_STRING) => {
            out.extend_from_slice(bytes);
            Ok(())
        }
        (Content::Constructed(children), TAG_OCTET_STRING_CONSTRUCTED) => {
            children.iter().try_for_each(|c| flatten_octets(c, out))
        }
        _ => Err(BerError::BadSegment(node.offset)),
    }
}

fn is_octet_segment(node: &Node<'_>) -> bool {
    matches!(
        node.first_tag_byte(),
        TAG_OCTET_STRING | TAG_OCTET_STRING_CONSTRUCTED
    )
}

/// `SEQUENCE { OID, SEQUENCE, [0] constructed of OCTET STRING segments }`:
/// the shape of `EncryptedContentInfo` with segmented content.
fn is_segmented_encrypted_content_info(children: &[Node<'_>]) -> bool {
    match children {
        [oid, alg, content] => {
            oid.first_tag_byte() == TAG_OID
                && alg.first_tag_byte() == TAG_SEQUENCE
                && content.tag == [TAG_CONTEXT_0_CONSTRUCTED]
                && matches!(&content.content, Content::Constructed(c) if c.iter().all(is_octet_segment))
        }
        _ => false,
    }
}

fn encode(node: &Node<'_>, out: &mut Vec<u8>) -> Result<(), BerError> {
    match &node.content {
        Content::Primitive(bytes) => {
            out.extend_from_slice(node.tag);
            push_length(out, bytes.len());
            out.extend_from_slice(bytes);
        }
        Content::Constructed(_) if node.first_tag_byte() == TAG_OCTET_STRING_CONSTRUCTED => {
            let mut bytes = Vec::new();
            flatten_octets(node, &mut bytes)?;
            out.push(TAG_OCTET_STRING);
            push_length(out, bytes.len());
            out.extend_from_slice(&bytes);
        }
        Content::Constructed(children) => {
            let segmented =
                node.tag == [TAG_SEQUENCE] && is_segmented_encrypted_content_info(children);
            let mut body = Vec::new();
            for (i, child) in children.iter().enumerate() {
                match (&child.content, segmented && i == 2) {
                    (Content::Constructed(segments), true) => {
                        let mut bytes = Vec::new();
                        segments
                            .iter()
                            .try_for_each(|s| flatten_octets(s, &mut bytes))?;
                        body.push(TAG_CONTEXT_0_PRIMITIVE);
                        push_length(&mut body, bytes.len());
                        body.extend_from_slice(&bytes);
                    }
                    _ => encode(child, &mut body)?,
                }
            }
            out.extend_from_slice(node.tag);
            push_length(out, body.len());
            out.extend_from_slice(&body);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_der_unchanged() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        assert_eq!(ber_to_der(&der).unwrap(), der);
    }

    #[test]
    fn resolves_indefinite_lengths_and_segmented_strings() {
        // SEQUENCE(indef) { OCTET STRING(constructed, indef) { 04 01 aa, 04 02 bb cc } }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x02, 0xbb, 0xcc, 0, 0, 0, 0,
        ];
        assert_eq!(
            ber_to_der(&ber).unwrap(),
            [0x30, 0x05, 0x04, 0x03, 0xaa, 0xbb, 0xcc]
        );
    }

    #[test]
    fn flattens_segmented_encrypted_content() {
        // SEQUENCE { OID 1.2, SEQUENCE {}, [0](indef) { 04 01 01, 04 01 02 } }
        let ber = [
            0x30, 0x80, 0x06, 0x01, 0x2a, 0x30, 0x00, 0xa0, 0x80, 0x04, 0x01, 0x01, 0x04, 0x01,
            0x02, 0, 0, 0, 0,
        ];
        assert_eq!(
            ber_to_der(&ber).unwrap(),
            [0x30, 0x09, 0x06, 0x01, 0x2a, 0x30, 0x00, 0x80, 0x02, 0x01, 0x02]
        );
        // An explicit [0] elsewhere (ContentInfo shape: OID, [0]) is kept.
        let ci = [
            0x30, 0x80, 0x06, 0x01, 0x2a, 0xa0, 0x80, 0x30, 0x00, 0, 0, 0, 0,
        ];
        assert_eq!(
            ber_to_der(&ci).unwrap(),
            [0x30, 0x07, 0x06, 0x01, 0x2a, 0xa0, 0x02, 0x30, 0x00]
        );
    }

    #[test]
    fn encodes_long_lengths_minimally() {
        let mut ber = vec![0x04, 0x82, 0x00, 0x81];
        ber.extend([7u8; 0x81]);
        let der = ber_to_der(&ber).unwrap();
        assert_eq!(&der[..3], &[0x04, 0x81, 0x81]);
        assert_eq!(der.len(), 3 + 0x81);
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(ber_to_der(&[]), Err(BerError::Truncated(0)));
        assert_eq!(
            ber_to_der(&[0x30, 0x80, 0x02, 0x01, 0x01]),
            Err(BerError::Truncated(5))
        );
        assert_eq!(
            ber_to_der(&[0x04, 0x80, 0, 0]),
            Err(BerError::IndefinitePrimitive(0))
        );
        assert_eq!(ber_to_der(&[0x04, 0x05, 1]), Err(BerError::Truncated(2)));
        assert_eq!(
            ber_to_der(&[0x04, 0x85, 1, 1, 1, 1, 1]),
            Err(BerError::BadLength(1))
        );
        assert_eq!(
            ber_to_der(&[0x04, 0x00, 0x00]),
            Err(BerError::TrailingBytes(1))
        );
        assert!(matches!(
            ber_to_der(&[0x24, 0x03, 0x02, 0x01, 0x01]),
            Err(BerError::BadSegment(_))
        ));
        let deep: Vec<u8> = std::iter::repeat_n([0x30, 0x80], 40).flatten().collect();
        assert_eq!(ber_to_der(&deep), Err(BerError::TooDeep));
        // A length field wider than the platform or beyond the input never panics.
        assert!(ber_to_der(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}

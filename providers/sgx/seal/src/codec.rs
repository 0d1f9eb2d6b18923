//! Bounded reading of the byte formats this crate parses (sealed blobs,
//! backups, cloud payloads). Every read checks the remaining length, so a
//! short or hostile input is an error, never a panic. Also the one way
//! those formats are encrypted: header, then the ciphertext that
//! authenticates it.

use aes_gcm_siv::aead::{self, Aead, Nonce, Payload};

/// Encrypts `secret` with the header already in `blob` as associated data
/// and appends the ciphertext, so that the blob is header ‖ ciphertext and
/// a changed header fails authentication.
pub(crate) fn append_encrypted<C: Aead>(
    cipher: &C,
    nonce: &Nonce<C>,
    secret: &[u8],
    blob: &mut Vec<u8>,
) -> Result<(), aead::Error> {
    let ciphertext = cipher.encrypt(
        nonce,
        Payload {
            msg: secret,
            aad: blob.as_slice(),
        },
    )?;
    blob.extend_from_slice(&ciphertext);
    Ok(())
}

/// Reads fields front to back from an untrusted buffer.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

/// The input ended before a field it announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.rest.len() < n {
            return Err(Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// How many bytes were consumed from `start` (the full original buffer).
    pub(crate) fn consumed(&self, start: &[u8]) -> usize {
        start.len().saturating_sub(self.rest.len())
    }

    /// Everything not read yet.
    pub(crate) fn remaining(self) -> &'a [u8] {
        self.rest
    }
}

/// Labels name what a sealed blob or backup holds and are bound into its
/// authenticated data. They are short printable ASCII so they can be shown in
/// error messages without escaping.
pub(crate) fn validate_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err("a label must be 1 to 64 bytes long");
    }
    if !label.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a label must be printable ASCII without spaces");
    }
    Ok(())
}

/// Longest label accepted in a sealed blob or backup.
pub const MAX_LABEL_LEN: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_short_input() {
        let buf = [1u8, 2, 0, 3, 0, 0, 0, 9];
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 2);
        assert_eq!(r.u32().unwrap(), 3);
        assert_eq!(r.consumed(&buf), 7);
        assert_eq!(r.u16(), Err(Truncated));
        assert_eq!(r.u8().unwrap(), 9);
        assert!(r.remaining().is_empty());
    }

    #[test]
    fn labels_are_short_printable_ascii() {
        assert!(validate_label("consensus-key").is_ok());
        assert!(validate_label("").is_err());
        assert!(validate_label("has space").is_err());
        assert!(validate_label(&"x".repeat(65)).is_err());
        assert!(validate_label("clé").is_err());
    }
}

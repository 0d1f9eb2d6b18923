//! Framed byte streams between an enclave and its host.
//!
//! An enclave talks to its untrusted host over a few byte streams (setup,
//! state, logs; node traffic uses the privval framing instead). Each message
//! on them is one frame: a 4-byte little-endian length followed by that many
//! bytes. Structured messages are JSON inside a frame. The transport (EDP
//! usercall streams, vsock, Unix sockets in tests) is the caller's business.
//!
//! When one socket carries all streams of an enclave (the host simulation),
//! each new connection starts with one frame naming its stream
//! ([`announce`] / [`read_announcement`]).

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// Largest frame accepted by default: setup messages and state records are
/// far smaller; 1 MiB leaves room for attestation documents and envelopes.
pub const MAX_LINK_FRAME: usize = 1 << 20;

/// Longest stream name in an announcement: room for `node:` plus a
/// `unix://` path of the kernel's 108-byte limit or a `tcp://` address with
/// a 253-byte DNS name.
pub const MAX_NAME_LEN: usize = 512;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("peer closed the stream")]
    Closed,
    #[error("peer announced a {len}-byte frame, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("stream I/O: {0}")]
    Io(#[from] io::Error),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Write one frame and flush it.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
    // One buffer, one write: a frame is never interleaved or half-sent by us.
    let mut buf = Vec::with_capacity(body.len().saturating_add(4));
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf)?;
    w.flush()
}

/// Read one frame of at most `max` bytes. A clean end of stream before the
/// first byte is [`LinkError::Closed`].
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<Vec<u8>, LinkError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        let buf = len.get_mut(got..).unwrap_or_default();
        match r.read(buf) {
            Ok(0) if got == 0 => return Err(LinkError::Closed),
            Ok(0) => return Err(LinkError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
    }
    let len = usize::try_from(u32::from_le_bytes(len)).unwrap_or(usize::MAX);
    if len > max {
        return Err(LinkError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Send `message` as JSON in one frame.
pub fn send_json<W: Write + ?Sized, T: Serialize>(w: &mut W, message: &T) -> Result<(), LinkError> {
    let body = serde_json::to_vec(message).map_err(|e| LinkError::Malformed(e.to_string()))?;
    write_frame(w, &body)?;
    Ok(())
}

/// Receive one JSON message of at most `max` bytes.
pub fn recv_json<R: Read + ?Sized, T: DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<T, LinkError> {
    let body = read_frame(r, max)?;
    serde_json::from_slice(&body).map_err(|e| LinkError::Malformed(e.to_string()))
}

/// Name the stream this connection carries (first frame).
pub fn announce<W: Write + ?Sized>(w: &mut W, name: &str) -> io::Result<()> {
    write_frame(w, name.as_bytes())
}

/// Read the name a new connection announces.
pub fn read_announcement<R: Read + ?Sized>(r: &mut R) -> Result<String, LinkError> {
    let body = read_frame(r, MAX_NAME_LEN)?;
    String::from_utf8(body).map_err(|_| LinkError::Malformed("stream name is not UTF-8".into()))
}

/// Serde helpers for binary fields of JSON link messages: standard base64
/// (`#[serde(with = "tmkms_light::link::b64")]`).
pub mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// [`b64`] for optional fields (`null` when absent).
pub mod b64_opt {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_some(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_respect_the_limit() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        write_frame(&mut wire, &[]).unwrap();
        announce(&mut wire, "state").unwrap();
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r, 16).unwrap(), b"hello");
        assert_eq!(read_frame(&mut r, 16).unwrap(), b"");
        assert_eq!(read_announcement(&mut r).unwrap(), "state");
        assert!(matches!(read_frame(&mut r, 16), Err(LinkError::Closed)));

        let mut r = &wire[..];
        assert!(matches!(
            read_frame(&mut r, 4),
            Err(LinkError::TooLarge { len: 5, max: 4 })
        ));
        let mut truncated = &wire[..7];
        assert!(matches!(
            read_frame(&mut truncated, 16),
            Err(LinkError::Io(_))
        ));
        let mut half_len = &wire[..2];
        assert!(matches!(
            read_frame(&mut half_len, 16),
            Err(LinkError::Io(_))
        ));
    }

    #[test]
    fn long_node_stream_names_fit() {
        // A node socket path near the kernel's limit, and a long DNS name.
        let unix = format!("node:unix:///{}", "d".repeat(106));
        let tcp = format!("node:tcp://{}:26658", "h".repeat(253));
        for name in [unix, tcp] {
            let mut wire = Vec::new();
            announce(&mut wire, &name).unwrap();
            assert_eq!(read_announcement(&mut &wire[..]).unwrap(), name);
        }
        let mut wire = Vec::new();
        announce(&mut wire, &"x".repeat(MAX_NAME_LEN + 1)).unwrap();
        assert!(matches!(
            read_announcement(&mut &wire[..]),
            Err(LinkError::TooLarge { .. })
        ));
    }

    #[test]
    fn json_messages_round_trip_and_garbage_is_an_error() {
        let mut wire = Vec::new();
        send_json(&mut wire, &vec![1u32, 2, 3]).unwrap();
        write_frame(&mut wire, b"{not json").unwrap();
        let mut r = &wire[..];
        assert_eq!(recv_json::<_, Vec<u32>>(&mut r, 64).unwrap(), vec![1, 2, 3]);
        assert!(matches!(
            recv_json::<_, Vec<u32>>(&mut r, 64),
            Err(LinkError::Malformed(_))
        ));
    }
}

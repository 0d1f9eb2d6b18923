//! Just enough HTTP/1.1 for the signer's clients (AWS KMS from the Nitro
//! enclave, etcd's JSON gateway for high availability): write a request,
//! read one response with a length cap, on a connection that is closed
//! after it or kept for the next request.
//!
//! Hand-written over `httparse` (which parses the head) because the client
//! libraries (hyper, ureq, reqwest) bring an async runtime or their own
//! socket/TLS handling, while here the stream is handed in by the caller
//! (a vsock proxy or an EDP usercall stream in an enclave, a TLS session
//! that ends inside it) and must stay a plain `Read + Write`.
//! Bodies may be `Content-Length`, `chunked` or read-to-close; every path is
//! bounded and malformed input is an error, never a panic.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

/// The most header bytes accepted before the body.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most headers accepted in one response.
const MAX_HEADERS: usize = 64;

/// What went wrong in the HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The stream failed.
    #[error("HTTP I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before a complete response.
    #[error("the connection closed before the response was complete ({0})")]
    Truncated(&'static str),
    /// The status line or a header could not be parsed.
    #[error("malformed HTTP response head: {0}")]
    MalformedHead(String),
    /// The head is larger than [`MAX_HEAD_BYTES`].
    #[error("HTTP response head exceeds {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// The body is larger than the caller's cap.
    #[error("HTTP response body exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// A chunk of a `Transfer-Encoding: chunked` body is malformed.
    #[error("malformed chunked body: {0}")]
    MalformedChunk(&'static str),
    /// A transfer coding other than `chunked`/`identity`.
    #[error("unsupported Transfer-Encoding {0:?}")]
    UnsupportedTransferEncoding(String),
}

/// One parsed response. The body is zeroized on drop: KMS responses may carry
/// key material.
#[derive(Debug)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header names (as sent) and values.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Zeroizing<Vec<u8>>,
    /// Whether the stream may carry another request: the body had a known
    /// end, the server did not ask to close, and it sent nothing more.
    pub reusable: bool,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether the connection is used again after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// `Connection: close`: one request per connection.
    Close,
    /// `Connection: keep-alive`: the caller sends its next request on the
    /// same stream, after reading this response in full (no pipelining).
    KeepAlive,
}

/// Writes a request with `Host`, `Content-Length` and `Connection` added to
/// `headers`, in one write.
pub fn write_request(
    stream: &mut impl Write,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    connection: Connection,
) -> io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    let connection = match connection {
        Connection::Close => "close",
        Connection::KeepAlive => "keep-alive",
    };
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    ));
    // The head may carry a session token, the body key material.
    let mut message = Zeroizing::new(head.into_bytes());
    message.extend_from_slice(body);
    stream.write_all(&message)?;
    stream.flush()
}

/// Reads one response (skipping `1xx` interim responses) whose body is at
/// most `max_body` bytes.
pub fn read_response(stream: &mut impl Read, max_body: usize) -> Result<Response, HttpError> {
    let mut reader = BufReader::new(stream);
    loop {
        let (status, headers) = reader.read_head()?;
        if (100..200).contains(&status) {
            continue;
        }
        let (body, delimited) = read_body(&mut reader, &headers, max_body)?;
        let closing = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        });
        let reusable = delimited && !closing && reader.buffered().is_empty();
        return Ok(Response {
            status,
            headers,
            body,
            reusable,
        });
    }
}

/// The body, and whether its end was delimited (length or chunks) rather
/// than the end of the stream.
fn read_body<R: Read>(
    reader: &mut BufReader<R>,
    headers: &[(String, String)],
    max_body: usize,
) -> Result<(Zeroizing<Vec<u8>>, bool), HttpError> {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    if let Some(te) = find("transfer-encoding") {
        let codings: Vec<String> = te
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| c != "identity")
            .collect();
        return match codings.as_slice() {
            [] => Ok((reader.read_to_close(max_body)?, false)),
            [only] if only == "chunked" => Ok((read_chunked(reader, max_body)?, true)),
            _ => Err(HttpError::UnsupportedTransferEncoding(te.to_owned())),
        };
    }
    if let Some(cl) = find("content-length") {
        let len: usize = cl
            .parse()
            .map_err(|_| HttpError::MalformedHead(format!("Content-Length {cl:?}")))?;
        if len > max_body {
            return Err(HttpError::BodyTooLarge { limit: max_body });
        }
        return Ok((reader.read_exact_vec(len)?, true));
    }
    Ok((reader.read_to_close(max_body)?, false))
}

fn read_chunked<R: Read>(
    reader: &mut BufReader<R>,
    max_body: usize,
) -> Result<Zeroizing<Vec<u8>>, HttpError> {
    let mut body = Zeroizing::new(Vec::new());
    loop {
        let line = reader.read_line()?;
        let size_text = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let size_text = std::str::from_utf8(size_text)
            .map_err(|_| HttpError::MalformedChunk("chunk size is not ASCII"))?
            .trim();
        if size_text.is_empty() || size_text.len() > 8 {
            return Err(HttpError::MalformedChunk("bad chunk size line"));
        }
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::MalformedChunk("chunk size is not hexadecimal"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                if reader.read_line()?.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > max_body {
            return Err(HttpError::BodyTooLarge { limit: max_body });
        }
        let chunk = reader.read_exact_vec(size)?;
        body.extend_from_slice(&chunk);
        if !reader.read_line()?.is_empty() {
            return Err(HttpError::MalformedChunk("chunk data not followed by CRLF"));
        }
    }
}

/// A small buffered reader that never reads past what it is asked for
/// by more than one buffer, and bounds every line.
struct BufReader<R> {
    inner: R,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl<R: Read> BufReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Reads more bytes; Ok(false) at end of stream.
    fn fill(&mut self) -> Result<bool, HttpError> {
        if self.pos > 0 {
            let consumed = self.pos.min(self.buf.len());
            self.buf.drain(..consumed);
            self.pos = 0;
        }
        let mut tmp = Zeroizing::new([0u8; 8192]);
        let n = loop {
            match self.inner.read(&mut tmp[..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        self.buf.extend_from_slice(tmp.get(..n).unwrap_or(&[]));
        Ok(n > 0)
    }

    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
    }

    /// One line without its CRLF (or bare LF), at most MAX_HEAD_BYTES long.
    fn read_line(&mut self) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(i) = self.buffered().iter().position(|&b| b == b'\n') {
                let mut line = self.buffered().get(..i).unwrap_or(&[]).to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(i + 1);
                return Ok(line);
            }
            if self.buffered().len() > MAX_HEAD_BYTES {
                return Err(HttpError::MalformedChunk("line too long"));
            }
            if !self.fill()? {
                return Err(HttpError::Truncated("in a line"));
            }
        }
    }

    fn read_head(&mut self) -> Result<(u16, Vec<(String, String)>), HttpError> {
        loop {
            let mut header_buf = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut header_buf);
            match parsed.parse(self.buffered()) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed
                        .code
                        .ok_or_else(|| HttpError::MalformedHead("no status code".into()))?;
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            std::str::from_utf8(h.value)
                                .map(|v| (h.name.to_owned(), v.to_owned()))
                                .map_err(|_| {
                                    HttpError::MalformedHead(format!(
                                        "header {} is not UTF-8",
                                        h.name
                                    ))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    self.consume(len);
                    return Ok((status, headers));
                }
                Ok(httparse::Status::Partial) => {
                    if self.buffered().len() > MAX_HEAD_BYTES {
                        return Err(HttpError::HeadTooLarge);
                    }
                    if !self.fill()? {
                        return Err(HttpError::Truncated("in the response head"));
                    }
                }
                Err(e) => return Err(HttpError::MalformedHead(e.to_string())),
            }
        }
    }

    fn read_exact_vec(&mut self, n: usize) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        let mut out = Zeroizing::new(Vec::with_capacity(n.min(64 * 1024)));
        while out.len() < n {
            if self.buffered().is_empty() && !self.fill()? {
                return Err(HttpError::Truncated("in the body"));
            }
            let take = (n - out.len()).min(self.buffered().len());
            out.extend_from_slice(self.buffered().get(..take).unwrap_or(&[]));
            self.consume(take);
        }
        Ok(out)
    }

    fn read_to_close(&mut self, max_body: usize) -> Result<Zeroizing<Vec<u8>>, HttpError> {
        let mut out = Zeroizing::new(Vec::new());
        loop {
            out.extend_from_slice(self.buffered());
            let n = self.buffered().len();
            self.consume(n);
            if out.len() > max_body {
                return Err(HttpError::BodyTooLarge { limit: max_body });
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(out),
                // TLS peers that close without close_notify: the body has no
                // length, so a truncation cannot be told apart; refuse it.
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, to exercise
    /// every buffer boundary.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn parse(raw: &[u8], max: usize) -> Result<Response, HttpError> {
        let mut last = None;
        for step in [1, 3, 7, 4096] {
            let r = read_response(&mut Trickle { data: raw, step }, max);
            if let Ok(resp) = &r {
                if let Some(Ok(prev)) = &last {
                    let prev: &Response = prev;
                    assert_eq!(prev.body, resp.body);
                }
            }
            last = Some(r);
        }
        last.unwrap()
    }

    #[test]
    fn reads_content_length_body() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 100).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
        assert_eq!(&r.body[..], b"hello");
    }

    #[test]
    fn reads_chunked_body_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\n";
        let r = parse(raw, 100).unwrap();
        assert_eq!(&r.body[..], b"Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn reads_to_close_without_length() {
        let r = parse(b"HTTP/1.0 400 Bad Request\r\n\r\n{\"x\":1}", 100).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(&r.body[..], b"{\"x\":1}");
    }

    #[test]
    fn skips_interim_100_continue() {
        let r = parse(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            10,
        )
        .unwrap();
        assert_eq!(r.status, 204);
    }

    /// One response the parser must refuse, and the error it must give.
    type Refusal<'a> = (&'a [u8], usize, fn(&HttpError) -> bool);

    fn assert_refused(cases: &[Refusal<'_>]) {
        for (raw, limit, expected) in cases {
            let result = parse(raw, *limit);
            assert!(
                matches!(&result, Err(e) if expected(e)),
                "{:?} (limit {limit}): {result:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn rejects_oversize_bodies() {
        assert_refused(&[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
                10,
                |e| matches!(e, HttpError::BodyTooLarge { limit: 10 }),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
                10,
                |e| matches!(e, HttpError::BodyTooLarge { .. }),
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\nhello world",
                10,
                |e| matches!(e, HttpError::BodyTooLarge { .. }),
            ),
            // A huge declared length is refused before any allocation.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                10,
                |e| matches!(e, HttpError::BodyTooLarge { .. }),
            ),
        ]);
    }

    #[test]
    fn rejects_malformed_and_truncated_responses() {
        let truncated = |e: &HttpError| matches!(e, HttpError::Truncated(_));
        let malformed_head = |e: &HttpError| matches!(e, HttpError::MalformedHead(_));
        let malformed_chunk = |e: &HttpError| matches!(e, HttpError::MalformedChunk(_));
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 10));
        assert_refused(&[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
                100,
                truncated,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", 100, truncated),
            (b"SMTP/1.1 200 OK\r\n\r\n", 100, malformed_head),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                100,
                malformed_head,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                100,
                malformed_chunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
                100,
                malformed_chunk,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                100,
                |e| matches!(e, HttpError::UnsupportedTransferEncoding(_)),
            ),
            (&big, 100, |e| matches!(e, HttpError::HeadTooLarge)),
        ]);
    }

    #[test]
    fn writes_request_with_length_and_close() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "POST",
            "/",
            "127.0.0.1:4566",
            &[("X-Amz-Target", "TrentService.Encrypt")],
            b"{}",
            Connection::Close,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:4566\r\nX-Amz-Target: TrentService.Encrypt\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }

    #[test]
    fn a_delimited_response_leaves_the_connection_reusable() {
        let cases: [(&[u8], bool); 5] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n{}", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP", false),
        ];
        for (bytes, reusable) in cases {
            let response = read_response(&mut &bytes[..], 100).unwrap();
            assert_eq!(&response.body[..], b"{}");
            assert_eq!(
                response.reusable,
                reusable,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

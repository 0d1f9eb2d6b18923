//! The KMS client: signed JSON-1.1 calls over a connector-supplied stream.
//!
//! Synchronous and runtime-free so that it runs inside the enclave; one
//! request per connection (`Connection: close`), which is what a vsock proxy
//! handles best and costs little for the handful of calls made at start-up.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::KmsConfig;
use crate::credentials::Credentials;
use crate::error::{KmsError, KmsErrorKind};
use crate::sigv4::{self, AmzDate, Scope, Signable};
use crate::transport::{self, Connector};
use tmkms_light_http as http;

/// Default cap on a response body: KMS responses are a few KiB at most.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// KMS's limit on `Encrypt` plaintext.
pub const MAX_ENCRYPT_PLAINTEXT: usize = 4096;
/// The only key-encryption algorithm KMS offers for a `Recipient`.
pub const RECIPIENT_KEY_ENCRYPTION_ALGORITHM: &str = "RSAES_OAEP_SHA_256";

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const SERVICE: &str = "kms";

/// A synchronous AWS KMS client. See the crate docs.
pub struct KmsClient {
    config: KmsConfig,
    credentials: Credentials,
    connector: Connector,
    tls: Option<Arc<rustls::ClientConfig>>,
    clock: fn() -> AmzDate,
    max_response_bytes: usize,
}

impl fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClient")
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest<'a> {
    key_id: &'a str,
    plaintext: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest<'a> {
    ciphertext_blob: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_context: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<Recipient<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Recipient<'a> {
    key_encryption_algorithm: &'a str,
    attestation_document: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptResponse {
    ciphertext_blob: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptResponse {
    plaintext: Option<Zeroizing<String>>,
    ciphertext_for_recipient: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyResponse {
    key_metadata: Option<KeyMetadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadata {
    key_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    code: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

impl KmsClient {
    /// A client for `config`, signing with `credentials`, reaching the endpoint
    /// through streams from `connector` (TLS is added here when the endpoint is
    /// `https`, so the connector yields the raw stream). The TLS configuration
    /// is always [`transport::default_tls_config`]: the server's certificate
    /// must chain to a compiled-in public root and name the endpoint's host;
    /// there is no way to trust another root or skip the check.
    pub fn new(
        config: KmsConfig,
        credentials: Credentials,
        connector: Connector,
    ) -> Result<Self, KmsError> {
        let tls = if config.endpoint.tls {
            Some(transport::default_tls_config().map_err(KmsError::Tls)?)
        } else {
            None
        };
        Ok(Self {
            config,
            credentials,
            connector,
            tls,
            clock: AmzDate::now,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Replaces the response size cap (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Replaces the clock used for `x-amz-date` (tests; an enclave whose time
    /// comes from elsewhere).
    pub fn with_clock(mut self, clock: fn() -> AmzDate) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &KmsConfig {
        &self.config
    }

    /// `Encrypt`: encrypts up to 4096 bytes under `key_id`; returns the
    /// `CiphertextBlob`.
    pub fn encrypt(
        &mut self,
        key_id: &str,
        plaintext: &[u8],
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> Result<Vec<u8>, KmsError> {
        if plaintext.is_empty() || plaintext.len() > MAX_ENCRYPT_PLAINTEXT {
            return Err(KmsError::InvalidInput {
                what: "plaintext",
                reason: "KMS Encrypt takes 1 to 4096 bytes",
            });
        }
        let encoded = Zeroizing::new(B64.encode(plaintext));
        let body = to_json(&EncryptRequest {
            key_id,
            plaintext: &encoded,
            encryption_context,
        })?;
        const OP: &str = "Encrypt";
        let response = self.call(OP, &body)?;
        let parsed: EncryptResponse = parse_json(OP, &response)?;
        decode_b64(OP, "CiphertextBlob", parsed.ciphertext_blob)
    }

    /// `Decrypt` with an attestation `Recipient`: KMS checks the attestation
    /// document against the key policy and returns the plaintext encrypted to
    /// the document's public key, as a CMS EnvelopedData (`CiphertextForRecipient`);
    /// open it with [`crate::open_enveloped_data`]. A response carrying
    /// `Plaintext` is refused with [`KmsError::PlaintextReturned`].
    pub fn decrypt_for_recipient(
        &mut self,
        ciphertext_blob: &[u8],
        key_id: Option<&str>,
        attestation_document: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        self.decrypt_for_recipient_with_context(ciphertext_blob, key_id, None, attestation_document)
    }

    /// [`KmsClient::decrypt_for_recipient`] for a blob encrypted with an
    /// encryption context (which must be given again, identically).
    pub fn decrypt_for_recipient_with_context(
        &mut self,
        ciphertext_blob: &[u8],
        key_id: Option<&str>,
        encryption_context: Option<&BTreeMap<String, String>>,
        attestation_document: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        if attestation_document.is_empty() {
            return Err(KmsError::InvalidInput {
                what: "attestation document",
                reason: "it is empty; pass the NSM's COSE_Sign1 document",
            });
        }
        let blob = B64.encode(ciphertext_blob);
        let doc = B64.encode(attestation_document);
        let body = to_json(&DecryptRequest {
            ciphertext_blob: &blob,
            key_id,
            encryption_context,
            recipient: Some(Recipient {
                key_encryption_algorithm: RECIPIENT_KEY_ENCRYPTION_ALGORITHM,
                attestation_document: &doc,
            }),
        })?;
        const OP: &str = "Decrypt";
        let response = self.call(OP, &body)?;
        let parsed: DecryptResponse = parse_json(OP, &response)?;
        if parsed.plaintext.is_some() {
            return Err(KmsError::PlaintextReturned);
        }
        decode_b64(
            OP,
            "CiphertextForRecipient",
            parsed.ciphertext_for_recipient,
        )
    }

    /// Plain `Decrypt`, returning the plaintext. **For host-side tools and
    /// tests only**: inside the enclave use
    /// [`KmsClient::decrypt_for_recipient`], otherwise the plaintext crosses
    /// the untrusted host (TLS ends in the enclave, but the key policy cannot
    /// then require an attestation).
    pub fn decrypt(&mut self, ciphertext_blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.decrypt_with_context(ciphertext_blob, None, None)
    }

    /// [`KmsClient::decrypt`] with a key id and encryption context.
    pub fn decrypt_with_context(
        &mut self,
        ciphertext_blob: &[u8],
        key_id: Option<&str>,
        encryption_context: Option<&BTreeMap<String, String>>,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let blob = B64.encode(ciphertext_blob);
        let body = to_json(&DecryptRequest {
            ciphertext_blob: &blob,
            key_id,
            encryption_context,
            recipient: None,
        })?;
        const OP: &str = "Decrypt";
        let response = self.call(OP, &body)?;
        let parsed: DecryptResponse = parse_json(OP, &response)?;
        let encoded = parsed
            .plaintext
            .ok_or_else(|| KmsError::MalformedResponse {
                op: OP,
                reason: "no Plaintext".into(),
            })?;
        B64.decode(encoded.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| KmsError::MalformedResponse {
                op: OP,
                reason: "Plaintext is not base64".into(),
            })
    }

    /// `CreateKey` (symmetric, ENCRYPT_DECRYPT); returns the new key id. For
    /// tests and provisioning tools.
    pub fn create_key(&mut self, description: &str) -> Result<String, KmsError> {
        const OP: &str = "CreateKey";
        let body = to_json(&serde_json::json!({
            "Description": description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeySpec": "SYMMETRIC_DEFAULT",
        }))?;
        let response = self.call(OP, &body)?;
        let parsed: CreateKeyResponse = parse_json(OP, &response)?;
        parsed
            .key_metadata
            .and_then(|m| m.key_id)
            .ok_or_else(|| KmsError::MalformedResponse {
                op: OP,
                reason: "no KeyMetadata.KeyId".into(),
            })
    }

    /// One signed call of `TrentService.<op>` with a JSON body; returns the
    /// body of a 2xx response, or the KMS error.
    pub fn call(&mut self, op: &'static str, body: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let host = self.config.endpoint.host_header();
        let target = format!("TrentService.{op}");
        let date = (self.clock)();
        let timestamp = date.timestamp();
        let token = self.credentials.session_token.clone();
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Type", CONTENT_TYPE),
            ("Host", &host),
            ("X-Amz-Date", &timestamp),
            ("X-Amz-Target", &target),
        ];
        if let Some(token) = &token {
            headers.push(("X-Amz-Security-Token", token.as_str()));
        }
        let authorization = sigv4::authorization(
            &Signable {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                payload: body,
            },
            &self.credentials,
            &Scope {
                region: &self.config.region,
                service: SERVICE,
                date,
            },
        );
        // `Host` is written by the HTTP layer.
        headers.retain(|(n, _)| *n != "Host");
        headers.push(("Authorization", &authorization));

        let stream = (self.connector)().map_err(|source| KmsError::Connect {
            endpoint: self.config.endpoint.to_string(),
            source,
        })?;
        let mut stream = match &self.tls {
            Some(tls) => transport::tls_wrap(tls.clone(), &self.config.endpoint.host, stream)?,
            None => stream,
        };
        http::write_request(
            &mut stream,
            "POST",
            "/",
            &host,
            &headers,
            body,
            http::Connection::Close,
        )
        .map_err(|e| KmsError::Http {
            op,
            source: e.into(),
        })?;
        let response = http::read_response(&mut stream, self.max_response_bytes)
            .map_err(|source| KmsError::Http { op, source })?;
        check_status(op, response)
    }
}

fn check_status(
    op: &'static str,
    response: http::Response,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    if (200..300).contains(&response.status) {
        return Ok(response.body);
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
    let header_code = response.header("x-amzn-ErrorType").map(str::to_owned);
    let code = parsed
        .as_ref()
        .and_then(|b| b.code.clone())
        .or(header_code)
        .map(|c| short_code(&c).to_owned());
    match code {
        Some(code) => Err(KmsError::Service {
            op,
            kind: KmsErrorKind::from_code(&code),
            message: parsed.and_then(|b| b.message).unwrap_or_default(),
            code,
            status: response.status,
        }),
        None => Err(KmsError::HttpStatus {
            op,
            status: response.status,
            snippet: String::from_utf8_lossy(response.body.get(..200).unwrap_or(&response.body))
                .into_owned(),
        }),
    }
}

/// `com.amazonaws.kms#NotFoundException` or `NotFoundException:http://…` →
/// `NotFoundException`.
fn short_code(code: &str) -> &str {
    let code = code.rsplit('#').next().unwrap_or(code);
    code.split(':').next().unwrap_or(code).trim()
}

fn to_json(value: &impl Serialize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    serde_json::to_vec(value)
        .map(Zeroizing::new)
        .map_err(|_| KmsError::InvalidInput {
            what: "request",
            reason: "could not be serialised to JSON",
        })
}

fn parse_json<'a, T: Deserialize<'a>>(op: &'static str, body: &'a [u8]) -> Result<T, KmsError> {
    serde_json::from_slice(body).map_err(|e| KmsError::MalformedResponse {
        op,
        reason: format!("not the expected JSON: {e}"),
    })
}

fn decode_b64(op: &'static str, field: &str, value: Option<String>) -> Result<Vec<u8>, KmsError> {
    let value = value.ok_or_else(|| KmsError::MalformedResponse {
        op,
        reason: format!("no {field}"),
    })?;
    B64.decode(value.as_bytes())
        .map_err(|_| KmsError::MalformedResponse {
            op,
            reason: format!("{field} is not base64"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;
    use crate::transport::Stream;
    use std::io::{self, Cursor, Read, Write};
    use std::sync::Mutex;

    /// A stream that records what is written and replays a canned response.
    struct Canned {
        written: Arc<Mutex<Vec<u8>>>,
        response: Cursor<Vec<u8>>,
    }
    impl Read for Canned {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.response.read(buf)
        }
    }
    impl Write for Canned {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fixed_clock() -> AmzDate {
        AmzDate::from_unix(1_700_000_000)
    }

    fn client(status: &str, body: &str, token: Option<&str>) -> (KmsClient, Arc<Mutex<Vec<u8>>>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        let connector: Connector = Box::new(move || {
            Ok(Box::new(Canned {
                written: w.clone(),
                response: Cursor::new(response.clone()),
            }) as Stream)
        });
        let config = KmsConfig {
            region: "eu-west-1".into(),
            endpoint: Endpoint::parse("http://127.0.0.1:4566").unwrap(),
        };
        let creds = Credentials::new("AKIDTEST", "secret-key-value", token.map(str::to_owned));
        let c = KmsClient::new(config, creds, connector)
            .unwrap()
            .with_clock(fixed_clock);
        (c, written)
    }

    fn request_parts(written: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
        let text = written.to_vec();
        let split = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(text[..split].to_vec()).unwrap();
        let body = text[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next().unwrap(), "POST / HTTP/1.1");
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect();
        (headers, body)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        &headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap()
            .1
    }

    #[test]
    fn encrypt_sends_a_signed_json_request() {
        let (mut c, written) = client(
            "200 OK",
            r#"{"CiphertextBlob":"AQID","KeyId":"k"}"#,
            Some("the-token"),
        );
        let mut ctx = BTreeMap::new();
        ctx.insert("purpose".to_owned(), "validator".to_owned());
        let blob = c.encrypt("alias/k", b"secret", Some(&ctx)).unwrap();
        assert_eq!(blob, vec![1, 2, 3]);

        let (headers, body) = request_parts(&written.lock().unwrap());
        assert_eq!(header(&headers, "Host"), "127.0.0.1:4566");
        assert_eq!(header(&headers, "X-Amz-Target"), "TrentService.Encrypt");
        assert_eq!(
            header(&headers, "Content-Type"),
            "application/x-amz-json-1.1"
        );
        assert_eq!(header(&headers, "X-Amz-Date"), "20231114T221320Z");
        assert_eq!(header(&headers, "X-Amz-Security-Token"), "the-token");
        assert_eq!(header(&headers, "Connection"), "close");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["KeyId"], "alias/k");
        assert_eq!(json["Plaintext"], B64.encode(b"secret"));
        assert_eq!(json["EncryptionContext"]["purpose"], "validator");

        // The Authorization header is the SigV4 signature of exactly this request.
        let signed: Vec<(&str, &str)> = [
            "Content-Type",
            "Host",
            "X-Amz-Date",
            "X-Amz-Target",
            "X-Amz-Security-Token",
        ]
        .iter()
        .map(|n| (*n, header(&headers, n)))
        .collect();
        let expected = sigv4::authorization(
            &Signable {
                method: "POST",
                path: "/",
                query: "",
                headers: &signed,
                payload: &body,
            },
            &Credentials::new("AKIDTEST", "secret-key-value", Some("the-token".into())),
            &Scope {
                region: "eu-west-1",
                service: "kms",
                date: fixed_clock(),
            },
        );
        assert_eq!(header(&headers, "Authorization"), expected);
        assert!(expected.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/20231114/eu-west-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="));
        // The secret itself never goes on the wire.
        assert!(!String::from_utf8_lossy(&written.lock().unwrap()).contains("secret-key-value"));
    }

    #[test]
    fn decrypt_for_recipient_sends_the_recipient_and_returns_the_envelope() {
        let (mut c, written) = client(
            "200 OK",
            r#"{"CiphertextForRecipient":"MIAG","KeyId":"k","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
            None,
        );
        let envelope = c
            .decrypt_for_recipient(b"blob", Some("k"), b"attestation")
            .unwrap();
        assert_eq!(envelope, B64.decode("MIAG").unwrap());
        let (headers, body) = request_parts(&written.lock().unwrap());
        assert_eq!(header(&headers, "X-Amz-Target"), "TrentService.Decrypt");
        assert!(!headers.iter().any(|(n, _)| n == "X-Amz-Security-Token"));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["CiphertextBlob"], B64.encode(b"blob"));
        assert_eq!(json["KeyId"], "k");
        assert_eq!(
            json["Recipient"]["KeyEncryptionAlgorithm"],
            "RSAES_OAEP_SHA_256"
        );
        assert_eq!(
            json["Recipient"]["AttestationDocument"],
            B64.encode(b"attestation")
        );
    }

    #[test]
    fn refuses_plaintext_when_a_recipient_was_given() {
        let (mut c, _) = client("200 OK", r#"{"Plaintext":"c2VjcmV0","KeyId":"k"}"#, None);
        let err = c.decrypt_for_recipient(b"blob", None, b"doc").unwrap_err();
        assert!(matches!(err, KmsError::PlaintextReturned), "{err}");
        assert!(err.to_string().contains("crossed the host"));
    }

    #[test]
    fn plain_decrypt_returns_plaintext() {
        let (mut c, _) = client("200 OK", r#"{"Plaintext":"c2VjcmV0","KeyId":"k"}"#, None);
        assert_eq!(&c.decrypt(b"blob").unwrap()[..], b"secret");
    }

    #[test]
    fn create_key_returns_the_key_id() {
        let (mut c, _) = client(
            "200 OK",
            r#"{"KeyMetadata":{"KeyId":"1234-abcd","Arn":"arn:x"}}"#,
            None,
        );
        assert_eq!(c.create_key("test").unwrap(), "1234-abcd");
    }

    #[test]
    fn maps_kms_errors() {
        let cases = [
            (
                r#"{"__type":"NotFoundException","message":"Key 'x' does not exist"}"#,
                KmsErrorKind::NotFound,
                "NotFoundException",
                "Key 'x' does not exist",
            ),
            (
                r#"{"__type":"com.amazonaws.kms#AccessDeniedException","Message":"denied by policy"}"#,
                KmsErrorKind::AccessDenied,
                "AccessDeniedException",
                "denied by policy",
            ),
            (
                r#"{"__type":"InvalidCiphertextException"}"#,
                KmsErrorKind::InvalidCiphertext,
                "InvalidCiphertextException",
                "",
            ),
            (
                r#"{"__type":"UnrecognizedClientException","message":"bad token"}"#,
                KmsErrorKind::Authentication,
                "UnrecognizedClientException",
                "bad token",
            ),
            (
                r#"{"__type":"SomethingNew","message":"?"}"#,
                KmsErrorKind::Other,
                "SomethingNew",
                "?",
            ),
        ];
        for (body, kind, code, message) in cases {
            let (mut c, _) = client("400 Bad Request", body, None);
            let err = c.decrypt_for_recipient(b"blob", None, b"doc").unwrap_err();
            match &err {
                KmsError::Service {
                    op,
                    kind: k,
                    code: c,
                    message: m,
                    status,
                } => {
                    assert_eq!(
                        (*op, *k, c.as_str(), m.as_str(), *status),
                        ("Decrypt", kind, code, message, 400)
                    );
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(err.kind(), Some(kind));
        }
    }

    #[test]
    fn non_kms_error_bodies_and_malformed_responses_are_errors() {
        let (mut c, _) = client("502 Bad Gateway", "<html>proxy</html>", None);
        assert!(matches!(
            c.encrypt("k", b"x", None).unwrap_err(),
            KmsError::HttpStatus { status: 502, .. }
        ));
        let (mut c, _) = client("200 OK", "not json", None);
        assert!(matches!(
            c.encrypt("k", b"x", None).unwrap_err(),
            KmsError::MalformedResponse { .. }
        ));
        let (mut c, _) = client("200 OK", r#"{"KeyId":"k"}"#, None);
        assert!(matches!(
            c.encrypt("k", b"x", None).unwrap_err(),
            KmsError::MalformedResponse { .. }
        ));
        let (mut c, _) = client("200 OK", r#"{"CiphertextForRecipient":"!!!"}"#, None);
        assert!(matches!(
            c.decrypt_for_recipient(b"b", None, b"d").unwrap_err(),
            KmsError::MalformedResponse { .. }
        ));
        let (c, _) = client(
            "200 OK",
            &format!(r#"{{"CiphertextBlob":"{}"}}"#, "A".repeat(2000)),
            None,
        );
        let mut c = c.with_max_response_bytes(1000);
        assert!(matches!(
            c.encrypt("k", b"x", None).unwrap_err(),
            KmsError::Http {
                source: http::HttpError::BodyTooLarge { .. },
                ..
            }
        ));
    }

    #[test]
    fn rejects_bad_input_before_sending() {
        let (mut c, written) = client("200 OK", "{}", None);
        assert!(matches!(
            c.encrypt("k", &[0; 4097], None).unwrap_err(),
            KmsError::InvalidInput { .. }
        ));
        assert!(matches!(
            c.encrypt("k", &[], None).unwrap_err(),
            KmsError::InvalidInput { .. }
        ));
        assert!(matches!(
            c.decrypt_for_recipient(b"b", None, &[]).unwrap_err(),
            KmsError::InvalidInput { .. }
        ));
        assert!(written.lock().unwrap().is_empty());
    }

    #[test]
    fn connect_failures_name_the_endpoint() {
        let config = KmsConfig::with_endpoint_url("us-east-1", "http://127.0.0.1:1").unwrap();
        let connector: Connector =
            Box::new(|| Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused")));
        let mut c = KmsClient::new(config, Credentials::new("a", "b", None), connector).unwrap();
        let err = c.encrypt("k", b"x", None).unwrap_err();
        assert!(err.to_string().contains("http://127.0.0.1:1"), "{err}");
    }

    #[test]
    fn https_endpoints_speak_tls_with_sni() {
        // A "server" that answers in plain HTTP: the client must have sent a
        // TLS ClientHello naming the host, and must fail cleanly on the reply.
        let written = Arc::new(Mutex::new(Vec::new()));
        let w = written.clone();
        let connector: Connector = Box::new(move || {
            Ok(Box::new(Canned {
                written: w.clone(),
                response: Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
            }) as Stream)
        });
        let config = KmsConfig::for_region("eu-west-1");
        let mut c = KmsClient::new(config, Credentials::new("a", "b", None), connector).unwrap();
        let err = c.encrypt("k", b"x", None).unwrap_err();
        assert!(matches!(err, KmsError::Http { .. }), "{err}");
        let hello = written.lock().unwrap().clone();
        assert_eq!(hello[0], 0x16, "a TLS handshake record");
        assert!(
            hello
                .windows(27)
                .any(|w| w == b"kms.eu-west-1.amazonaws.com"),
            "SNI"
        );
        assert!(
            !hello.windows(4).any(|w| w == b"POST"),
            "no plaintext HTTP before the handshake"
        );
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let (c, _) = client("200 OK", "{}", Some("tok-secret"));
        let s = format!("{c:?}");
        assert!(
            !s.contains("secret-key-value") && !s.contains("tok-secret"),
            "{s}"
        );
    }
}

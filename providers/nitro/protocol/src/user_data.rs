//! The user data of the init attestation: what `init` binds to the new
//! consensus key, signed by the NSM together with the enclave's PCRs, for
//! anyone to check with `tmkms-nitro-helper verify`.
//!
//! Layout (v2), all lengths big-endian, nothing after the last field:
//!
//! | bytes | field |
//! |---|---|
//! | 20 | [`INIT_USER_DATA_PREFIX`] `tmkms-light init v2\0` |
//! | 32 | consensus public key (Ed25519) |
//! | 32 | policy digest: SHA-256 of the bound policy (`BoundPolicy::digest_hex`, raw) |
//! | 1 | flags: bit 0 = test enclave (`--mock-nsm`); other bits zero |
//! | 2 + n | KMS region (UTF-8) |
//! | 2 + n | KMS key id, as the enclave sent it to KMS (UTF-8) |
//! | 2 + n | KMS endpoint the enclave spoke TLS to, `scheme://host[:port]` (UTF-8) |
//!
//! The whole is at most [`MAX_INIT_USER_DATA`] bytes (the NSM's limit).
//! Everything a production enclave accepts fits (the longest: a 14-byte
//! region, an alias ARN with a 250-byte name and a zonal FIPS VPC endpoint
//! name make 506 bytes); `init` refuses what would not — only a test
//! enclave's long stand-in URL can — before it sends anything to KMS.

use tmkms_nitro_nsm::MAX_USER_DATA_LEN;

/// First bytes of the init attestation's user data (format v2).
pub const INIT_USER_DATA_PREFIX: &[u8] = b"tmkms-light init v2\0";
/// The prefix of the earlier format (consensus key ‖ key id), refused.
pub const INIT_USER_DATA_PREFIX_V1: &[u8] = b"tmkms-light init v1\0";
/// Largest user data: what the NSM accepts.
pub const MAX_INIT_USER_DATA: usize = MAX_USER_DATA_LEN;
/// Flag: the attestation comes from a test enclave (`--mock-nsm`).
pub const FLAG_TEST_ENCLAVE: u8 = 0x01;
/// A policy digest of all zeros: no policy bound.
pub const UNBOUND_POLICY_DIGEST: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

const PUBLIC_KEY_LEN: usize = 32;
const DIGEST_LEN: usize = 32;

/// What the init attestation binds to the new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitUserData {
    /// The new consensus public key.
    pub consensus_public_key: [u8; PUBLIC_KEY_LEN],
    /// SHA-256 of the bound policy, 64 lower-case hex digits.
    pub policy_digest: String,
    /// Made by a test enclave (`--mock-nsm`).
    pub test_enclave: bool,
    /// The KMS region (SigV4 scope).
    pub region: String,
    /// The KMS key the seeds were encrypted under.
    pub kms_key_id: String,
    /// The endpoint the enclave verified the TLS certificate of,
    /// `https://host` (or a test enclave's stand-in URL).
    pub kms_endpoint: String,
}

/// Why user data could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    #[error("not the user data of a tmkms-light init attestation")]
    NotInit,
    #[error("an init attestation of format v1 (an earlier tmkms-light), which binds the consensus key and KMS key id but not the KMS region, endpoint or policy; run init again with this version for one that does")]
    Version1,
    #[error("init attestation user data: the {field} is cut short")]
    Truncated { field: &'static str },
    #[error("init attestation user data: {0} bytes after the last field")]
    Trailing(usize),
    #[error("init attestation user data: the {field} is not UTF-8")]
    NotUtf8 { field: &'static str },
    #[error("init attestation user data: unknown flags {0:#04x}")]
    Flags(u8),
    #[error("the policy digest {0:?} is not 64 lower-case hex digits (a SHA-256)")]
    Digest(String),
    #[error(
        "init attestation user data of {len} bytes, over the NSM's limit of {MAX_INIT_USER_DATA}"
    )]
    Oversize { len: usize },
    #[error("the init attestation's user data would be {len} bytes, over the NSM's limit of {MAX_INIT_USER_DATA}: the KMS key id is {key_id_len} bytes and the endpoint {endpoint_len}; use a shorter endpoint URL, or the key's id instead of a long alias")]
    TooLong {
        len: usize,
        key_id_len: usize,
        endpoint_len: usize,
    },
}

/// The init attestation's user data for `data`.
pub fn init_user_data(data: &InitUserData) -> Result<Vec<u8>, UserDataError> {
    let digest = decode_digest(&data.policy_digest)?;
    let strings = [
        data.region.as_bytes(),
        data.kms_key_id.as_bytes(),
        data.kms_endpoint.as_bytes(),
    ];
    let len = INIT_USER_DATA_PREFIX.len()
        + PUBLIC_KEY_LEN
        + DIGEST_LEN
        + 1
        + strings.iter().map(|s| 2 + s.len()).sum::<usize>();
    if len > MAX_INIT_USER_DATA {
        return Err(UserDataError::TooLong {
            len,
            key_id_len: data.kms_key_id.len(),
            endpoint_len: data.kms_endpoint.len(),
        });
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(INIT_USER_DATA_PREFIX);
    out.extend_from_slice(&data.consensus_public_key);
    out.extend_from_slice(&digest);
    out.push(if data.test_enclave {
        FLAG_TEST_ENCLAVE
    } else {
        0
    });
    for s in strings {
        // Fits: the total is at most 512 bytes.
        let n = u16::try_from(s.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(s);
    }
    Ok(out)
}

/// Reads an init attestation's user data.
pub fn parse_init_user_data(user_data: &[u8]) -> Result<InitUserData, UserDataError> {
    let Some(rest) = user_data.strip_prefix(INIT_USER_DATA_PREFIX) else {
        return Err(if user_data.starts_with(INIT_USER_DATA_PREFIX_V1) {
            UserDataError::Version1
        } else {
            UserDataError::NotInit
        });
    };
    if user_data.len() > MAX_INIT_USER_DATA {
        return Err(UserDataError::Oversize {
            len: user_data.len(),
        });
    }
    let mut reader = Reader(rest);
    let consensus_public_key = reader.array::<PUBLIC_KEY_LEN>("consensus public key")?;
    let digest = reader.array::<DIGEST_LEN>("policy digest")?;
    let [flags] = reader.array::<1>("flags")?;
    if flags & !FLAG_TEST_ENCLAVE != 0 {
        return Err(UserDataError::Flags(flags));
    }
    let region = reader.string("KMS region")?;
    let kms_key_id = reader.string("KMS key id")?;
    let kms_endpoint = reader.string("KMS endpoint")?;
    if !reader.0.is_empty() {
        return Err(UserDataError::Trailing(reader.0.len()));
    }
    Ok(InitUserData {
        consensus_public_key,
        policy_digest: encode_hex(&digest),
        test_enclave: flags & FLAG_TEST_ENCLAVE != 0,
        region,
        kms_key_id,
        kms_endpoint,
    })
}

/// A bounded reader over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], UserDataError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(UserDataError::Truncated { field })?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], UserDataError> {
        self.take(N, field)?
            .try_into()
            .map_err(|_| UserDataError::Truncated { field })
    }

    fn string(&mut self, field: &'static str) -> Result<String, UserDataError> {
        let len = u16::from_be_bytes(self.array::<2>(field)?);
        let bytes = self.take(usize::from(len), field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| UserDataError::NotUtf8 { field })
    }
}

fn decode_digest(hex: &str) -> Result<[u8; DIGEST_LEN], UserDataError> {
    let bad = || UserDataError::Digest(hex.to_owned());
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if hex.len() != 2 * DIGEST_LEN {
        return Err(bad());
    }
    let mut out = [0u8; DIGEST_LEN];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let [hi, lo] = pair else { return Err(bad()) };
        *byte = (nibble(*hi).ok_or_else(bad)? << 4) | nibble(*lo).ok_or_else(bad)?;
    }
    Ok(out)
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InitUserData {
        InitUserData {
            consensus_public_key: [7u8; 32],
            policy_digest: "ab".repeat(32),
            test_enclave: false,
            region: "eu-west-1".into(),
            kms_key_id:
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            kms_endpoint: "https://kms.eu-west-1.amazonaws.com".into(),
        }
    }

    #[test]
    fn round_trips_with_the_documented_layout() {
        let data = sample();
        let bytes = init_user_data(&data).unwrap();
        assert!(bytes.starts_with(b"tmkms-light init v2\0"));
        assert_eq!(&bytes[20..52], &[7u8; 32]);
        assert_eq!(&bytes[52..84], &[0xab; 32]);
        assert_eq!(bytes[84], 0);
        assert_eq!(&bytes[85..87], &[0, 9]);
        assert_eq!(&bytes[87..96], b"eu-west-1");
        assert_eq!(parse_init_user_data(&bytes).unwrap(), data);
        let test = InitUserData {
            test_enclave: true,
            policy_digest: UNBOUND_POLICY_DIGEST.into(),
            kms_endpoint: "http://127.0.0.1:4566".into(),
            ..sample()
        };
        let bytes = init_user_data(&test).unwrap();
        assert_eq!(bytes[84], FLAG_TEST_ENCLAVE);
        assert_eq!(parse_init_user_data(&bytes).unwrap(), test);
    }

    #[test]
    fn refuses_v1_foreign_truncated_trailing_and_unknown_flags() {
        let mut v1 = INIT_USER_DATA_PREFIX_V1.to_vec();
        v1.extend_from_slice(&[7u8; 32]);
        v1.extend_from_slice(b"alias/k");
        assert_eq!(parse_init_user_data(&v1), Err(UserDataError::Version1));
        assert!(UserDataError::Version1
            .to_string()
            .contains("run init again"));
        assert_eq!(parse_init_user_data(b"other"), Err(UserDataError::NotInit));
        let bytes = init_user_data(&sample()).unwrap();
        for cut in INIT_USER_DATA_PREFIX.len()..bytes.len() {
            assert!(
                matches!(
                    parse_init_user_data(&bytes[..cut]),
                    Err(UserDataError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            parse_init_user_data(&longer),
            Err(UserDataError::Trailing(1))
        );
        let mut flags = bytes.clone();
        flags[84] = 0x02;
        assert_eq!(parse_init_user_data(&flags), Err(UserDataError::Flags(2)));
        let mut utf8 = bytes;
        utf8[87] = 0xff;
        assert!(matches!(
            parse_init_user_data(&utf8),
            Err(UserDataError::NotUtf8 {
                field: "KMS region"
            })
        ));
    }

    #[test]
    fn refuses_bad_digests_and_what_the_nsm_would_refuse() {
        for bad in [
            "",
            "AB".repeat(32).as_str(),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            let data = InitUserData {
                policy_digest: bad.to_owned(),
                ..sample()
            };
            assert!(matches!(
                init_user_data(&data),
                Err(UserDataError::Digest(_))
            ));
        }
        // The longest values a production enclave accepts fit: a 14-byte
        // region, an alias ARN with a 250-byte name, a zonal FIPS VPC
        // endpoint name.
        let longest = InitUserData {
            region: "ap-southeast-5".into(),
            kms_key_id: format!(
                "arn:aws-us-gov:kms:ap-southeast-5:111122223333:alias/{}",
                "a".repeat(250)
            ),
            kms_endpoint: "https://vpce-0123456789abcdef0-abcdefgh-ap-southeast-5a.kms-fips.ap-southeast-5.vpce.amazonaws.com".into(),
            ..sample()
        };
        let bytes = init_user_data(&longest).unwrap();
        assert!(bytes.len() <= MAX_USER_DATA_LEN, "{}", bytes.len());
        // Only a test enclave's long stand-in URL can overflow.
        let data = InitUserData {
            kms_endpoint: format!("http://{}.example:4566", "a".repeat(200)),
            ..longest
        };
        let err = init_user_data(&data).unwrap_err();
        assert!(matches!(err, UserDataError::TooLong { .. }), "{err}");
        let mut oversize = INIT_USER_DATA_PREFIX.to_vec();
        oversize.resize(MAX_INIT_USER_DATA + 1, 0);
        assert!(matches!(
            parse_init_user_data(&oversize),
            Err(UserDataError::Oversize { .. })
        ));
    }
}

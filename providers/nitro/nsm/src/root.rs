//! The AWS Nitro Enclaves root of trust.

/// The AWS Nitro Enclaves root certificate, G1 (`CN=aws.nitro-enclaves`, P-384, valid
/// 2019-10-28 to 2049-10-28), as published by AWS in `AWS_NitroEnclaves_Root-G1.zip`.
///
/// SHA-256 of its DER: [`AWS_NITRO_ROOT_G1_SHA256`] (checked by a unit test). Every real
/// attestation document's `cabundle` starts with this certificate.
pub const AWS_NITRO_ROOT_G1_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
";

/// SHA-256 fingerprint of the G1 root's DER, as AWS documents it.
pub const AWS_NITRO_ROOT_G1_SHA256: &str =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

/// The DER of [`AWS_NITRO_ROOT_G1_PEM`], the trust anchor for real enclaves.
///
/// The PEM is a constant checked by a test, so decoding cannot fail; if it ever did, the empty
/// result fails every verification (fail closed) rather than panicking.
#[must_use]
pub fn aws_root_der() -> Vec<u8> {
    der::pem::decode_vec(AWS_NITRO_ROOT_G1_PEM.as_bytes())
        .map(|(_label, der)| der)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn pinned_pem_has_the_published_fingerprint() {
        let der = aws_root_der();
        assert_eq!(der.len(), 533);
        assert_eq!(hex::encode(Sha256::digest(&der)), AWS_NITRO_ROOT_G1_SHA256);
    }

    #[test]
    fn pinned_pem_is_the_aws_root_ca() {
        use der::Decode;
        let cert = x509_cert::Certificate::from_der(&aws_root_der()).unwrap();
        let tbs = &cert.tbs_certificate;
        assert_eq!(
            tbs.subject.to_string(),
            "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"
        );
        assert_eq!(tbs.subject, tbs.issuer);
    }
}

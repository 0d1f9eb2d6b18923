//! Which AWS KMS the enclave talks to: the one rule for the region, the key
//! id and the endpoint. The enclave applies it before every KMS call (init's
//! `Encrypt`, start's and state import's `Decrypt`); the helper applies it
//! to the `[nitro]` section, for early and friendly errors.
//!
//! Why it matters: the enclave reaches KMS through a TCP proxy the host
//! runs, and `init` sends the new seeds to KMS `Encrypt`. The only thing
//! between those seeds and the host is TLS that ends inside the enclave and
//! verifies the server's certificate (Mozilla's roots, compiled in) for the
//! name the enclave connects to. So the name must be one only AWS can get a
//! certificate for: a host that chose the name — or `http://` — would read
//! the seeds. A production enclave accepts only, for the configured region
//! `R` with the DNS suffix `S` of its partition (`amazonaws.com`, or
//! `amazonaws.com.cn` in China):
//!
//! * `https://kms.R.S` (the default) and `https://kms-fips.R.S` (no FIPS
//!   endpoint in China);
//! * the dual-stack `https://kms.R.api.aws` and `https://kms-fips.R.api.aws`
//!   (not in China);
//! * VPC endpoint names `https://vpce-<id>-<suffix>.kms.R.vpce.S` and the
//!   zonal `https://vpce-<id>-<suffix>-<R><az>.kms.R.vpce.S` (also
//!   `.kms-fips.` outside China);
//!
//! on port 443. A test enclave (`--mock-nsm`, whose attestation documents
//! real KMS refuses, and whose command line a production image measures into
//! its PCRs) accepts any endpoint URL, plain HTTP included.
//!
//! Pure: no I/O, no logging; the callers decide what to say.

use std::fmt;

use tmkms_nitro_kms::{Endpoint, KmsConfig};

/// Longest region name accepted (the longest AWS region name is 14 bytes).
pub const MAX_REGION_LEN: usize = 32;
/// Longest alias accepted, `alias/` included (KMS's limit).
pub const MAX_ALIAS_LEN: usize = 256;

/// An AWS partition this signer supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// The commercial regions (`aws`).
    Aws,
    /// The China regions (`aws-cn`), operated separately, under `amazonaws.com.cn`.
    China,
    /// AWS GovCloud (US) (`aws-us-gov`).
    GovCloud,
}

impl Partition {
    /// The partition's name in ARNs.
    pub fn arn_name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::China => "aws-cn",
            Partition::GovCloud => "aws-us-gov",
        }
    }

    /// The DNS suffix of the partition's service endpoints.
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::China => "amazonaws.com.cn",
            Partition::Aws | Partition::GovCloud => "amazonaws.com",
        }
    }
}

/// A validated AWS region name (`us-east-1`, `eu-central-2`, `us-gov-west-1`,
/// `cn-north-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    name: String,
    partition: Partition,
}

impl Region {
    /// Checks the shape `<geo>[-gov]-<direction>-<n>`, all lower case.
    pub fn parse(name: &str) -> Result<Self, KmsPolicyError> {
        let shape = || KmsPolicyError::RegionShape {
            region: name.to_owned(),
        };
        if name.len() > MAX_REGION_LEN {
            return Err(shape());
        }
        let parts: Vec<&str> = name.split('-').collect();
        if name.starts_with("eusc-") || parts.iter().any(|p| p.starts_with("iso")) {
            return Err(KmsPolicyError::RegionPartition {
                region: name.to_owned(),
            });
        }
        let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
        let (gov, geo, direction, number) = match parts.as_slice() {
            [geo, "gov", direction, number] => (true, *geo, *direction, *number),
            [geo, direction, number] => (false, *geo, *direction, *number),
            _ => return Err(shape()),
        };
        let number_ok = (1..=2).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit())
            && !number.starts_with('0');
        if geo.len() != 2 || !lower(geo) || !lower(direction) || direction == "gov" || !number_ok {
            return Err(shape());
        }
        let partition = match (geo, gov) {
            ("cn", false) => Partition::China,
            ("cn", true) => return Err(shape()),
            (_, true) => Partition::GovCloud,
            (_, false) => Partition::Aws,
        };
        Ok(Self {
            name: name.to_owned(),
            partition,
        })
    }

    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The partition the region belongs to.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The region's public KMS host, `kms.<region>.<suffix>`.
    pub fn kms_host(&self) -> String {
        format!("kms.{}.{}", self.name, self.partition.dns_suffix())
    }

    /// The region's public KMS endpoint over TLS.
    pub fn default_endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.kms_host(),
            port: 443,
            tls: true,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A validated KMS key id: a key id (UUID, or `mrk-…` for a multi-Region
/// key), `alias/<name>`, or the ARN of a key or alias in the configured
/// region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    /// Checks `key_id` for use in `region`.
    pub fn parse(key_id: &str, region: &Region) -> Result<Self, KmsPolicyError> {
        let shape = |reason: &'static str| KmsPolicyError::KeyIdShape {
            key_id: key_id.to_owned(),
            reason,
        };
        if let Some(arn) = key_id.strip_prefix("arn:") {
            let fields: Vec<&str> = arn.splitn(5, ':').collect();
            let [partition, service, key_region, account, resource] = fields.as_slice() else {
                return Err(shape("is not a complete ARN"));
            };
            if *service != "kms" {
                return Err(shape("is the ARN of another service than kms"));
            }
            if *key_region != region.as_str() {
                return Err(KmsPolicyError::KeyRegion {
                    key_id: key_id.to_owned(),
                    key_region: (*key_region).to_owned(),
                    region: region.as_str().to_owned(),
                });
            }
            if *partition != region.partition().arn_name() {
                return Err(KmsPolicyError::KeyPartition {
                    key_id: key_id.to_owned(),
                    arn_partition: (*partition).to_owned(),
                    region: region.as_str().to_owned(),
                    expected: region.partition().arn_name(),
                });
            }
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(shape("has an account id that is not 12 digits"));
            }
            if resource.starts_with("alias/") {
                check_alias(key_id, resource)?;
            } else if let Some(id) = resource.strip_prefix("key/") {
                if !is_key_uuid(id) && !is_multi_region_id(id) {
                    return Err(shape(
                        "names a key whose id is neither a UUID nor mrk-<32 hex>",
                    ));
                }
            } else {
                return Err(shape("is neither a key/… nor an alias/… ARN"));
            }
        } else if key_id.starts_with("alias/") {
            check_alias(key_id, key_id)?;
        } else if !is_key_uuid(key_id) && !is_multi_region_id(key_id) {
            return Err(shape("is not a KMS key id"));
        }
        Ok(Self(key_id.to_owned()))
    }

    /// The key id as KMS takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_alias(key_id: &str, alias: &str) -> Result<(), KmsPolicyError> {
    let name = alias.strip_prefix("alias/").unwrap_or_default();
    if name.starts_with("aws/") {
        return Err(KmsPolicyError::AwsManagedKey {
            key_id: key_id.to_owned(),
        });
    }
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'));
    if name.is_empty() || alias.len() > MAX_ALIAS_LEN || !chars_ok {
        return Err(KmsPolicyError::KeyIdShape {
            key_id: key_id.to_owned(),
            reason: "has an alias that is not 1 to 250 of A-Z a-z 0-9 / _ -",
        });
    }
    Ok(())
}

/// `1234abcd-12ab-34cd-56ef-1234567890ab`.
fn is_key_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `mrk-` and 32 hex digits.
fn is_multi_region_id(id: &str) -> bool {
    id.strip_prefix("mrk-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether an endpoint must be one of AWS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// A real enclave: only AWS KMS names of the region, over TLS, on 443.
    Production,
    /// A test enclave (`--mock-nsm`): any endpoint URL, plain HTTP included.
    Test,
}

/// Where KMS calls go, and whether the endpoint is one of AWS's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    /// Host (lower case), port and scheme.
    pub endpoint: Endpoint,
    /// An AWS KMS endpoint of the region over TLS (always true in
    /// [`EndpointMode::Production`]).
    pub is_aws: bool,
}

/// The endpoint for `region` from the optional URL override, under `mode`.
pub fn resolve_endpoint(
    region: &Region,
    url: Option<&str>,
    mode: EndpointMode,
) -> Result<ResolvedEndpoint, KmsPolicyError> {
    let Some(url) = url else {
        return Ok(ResolvedEndpoint {
            endpoint: region.default_endpoint(),
            is_aws: true,
        });
    };
    let mut endpoint = Endpoint::parse(url).map_err(|e| KmsPolicyError::EndpointUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    endpoint.host.make_ascii_lowercase();
    let is_aws = endpoint.tls && endpoint.port == 443 && is_aws_kms_host(region, &endpoint.host);
    if mode == EndpointMode::Production && !is_aws {
        let default = format!("https://{}", region.kms_host());
        if !endpoint.tls {
            return Err(KmsPolicyError::PlainHttp {
                url: url.to_owned(),
                default,
            });
        }
        if endpoint.port != 443 {
            return Err(KmsPolicyError::Port {
                url: url.to_owned(),
                port: endpoint.port,
            });
        }
        return Err(KmsPolicyError::Host {
            hint: foreign_host_hint(region, &endpoint.host),
            host: endpoint.host,
            region: region.as_str().to_owned(),
            default,
            suffix: region.partition().dns_suffix(),
        });
    }
    Ok(ResolvedEndpoint { endpoint, is_aws })
}

/// Whether `host` (lower case) is an AWS KMS endpoint name of `region`.
pub fn is_aws_kms_host(region: &Region, host: &str) -> bool {
    let china = region.partition() == Partition::China;
    let suffix = region.partition().dns_suffix();
    let services: &[&str] = if china {
        &["kms"]
    } else {
        &["kms", "kms-fips"]
    };
    let r = region.as_str();
    services.iter().any(|service| {
        host == format!("{service}.{r}.{suffix}")
            || (!china && host == format!("{service}.{r}.api.aws"))
            || host
                .strip_suffix(&format!(".{service}.{r}.vpce.{suffix}"))
                .is_some_and(|label| is_vpce_label(label, region))
    })
}

/// `vpce-<8..17 hex>-<4..8 [a-z0-9]>`, optionally `-<region><az letter>`.
fn is_vpce_label(label: &str, region: &Region) -> bool {
    let Some((id, rest)) = label
        .strip_prefix("vpce-")
        .and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    let id_ok = (8..=17).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let (suffix, zone) = match rest.split_once('-') {
        Some((suffix, zone)) => (suffix, Some(zone)),
        None => (rest, None),
    };
    let suffix_ok = (4..=8).contains(&suffix.len())
        && suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let zone_ok = zone.is_none_or(|zone| {
        zone.strip_prefix(region.as_str())
            .is_some_and(|az| az.len() == 1 && az.bytes().all(|b| b.is_ascii_lowercase()))
    });
    id_ok && suffix_ok && zone_ok
}

/// Why a refused host is not what it may look like.
fn foreign_host_hint(region: &Region, host: &str) -> String {
    if let Some(other) = host
        .split('.')
        .filter(|label| *label != region.as_str())
        .find_map(|label| Region::parse(label).ok())
        .filter(|other| is_aws_kms_host(other, host))
    {
        return format!(" (it is KMS of region {other}; KMS keys are regional)");
    }
    if host.contains("amazonaws") || host.contains("api.aws") {
        let tail: Vec<&str> = host.rsplitn(3, '.').take(2).collect();
        if let [tld, domain] = tail.as_slice() {
            return format!(" (it only looks like an AWS name: it is under {domain}.{tld})");
        }
    }
    String::new()
}

/// The KMS the enclave uses: region, key id and endpoint, all checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsTarget {
    region: Region,
    key_id: KeyId,
    endpoint: ResolvedEndpoint,
}

impl KmsTarget {
    /// Checks the region, the endpoint (under `mode`) and the key id, in
    /// that order.
    pub fn resolve(
        region: &str,
        key_id: &str,
        endpoint_url: Option<&str>,
        mode: EndpointMode,
    ) -> Result<Self, KmsPolicyError> {
        let region = Region::parse(region)?;
        let endpoint = resolve_endpoint(&region, endpoint_url, mode)?;
        let key_id = KeyId::parse(key_id, &region)?;
        Ok(Self {
            region,
            key_id,
            endpoint,
        })
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn key_id(&self) -> &str {
        self.key_id.as_str()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint.endpoint
    }

    /// Whether the endpoint is an AWS KMS endpoint of the region over TLS
    /// (false only for a test enclave's stand-in).
    pub fn is_aws_endpoint(&self) -> bool {
        self.endpoint.is_aws
    }

    /// The client configuration: the region as SigV4 scope, the endpoint as
    /// TLS server name and `Host`.
    pub fn config(&self) -> KmsConfig {
        KmsConfig {
            region: self.region.as_str().to_owned(),
            endpoint: self.endpoint.endpoint.clone(),
        }
    }
}

/// Why a region, key id or endpoint was refused; each says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsPolicyError {
    #[error("region {region:?} is not an AWS region name: expected the form of us-east-1, eu-central-2, us-gov-west-1 or cn-north-1, in lower case")]
    RegionShape { region: String },
    #[error("region {region:?} is in an AWS partition this signer does not support (ISO regions, European Sovereign Cloud); use a region of the aws, aws-cn or aws-us-gov partition")]
    RegionPartition { region: String },
    #[error("KMS key id {key_id:?} {reason}; use the key's id (1234abcd-12ab-34cd-56ef-1234567890ab, or mrk-<32 hex> for a multi-Region key), alias/<name>, or an ARN arn:<partition>:kms:<region>:<account>:key/<id> or …:alias/<name>")]
    KeyIdShape {
        key_id: String,
        reason: &'static str,
    },
    #[error("KMS key id {key_id:?} is an AWS managed key (alias/aws/…), whose key policy cannot require an enclave attestation; create a customer managed key")]
    AwsManagedKey { key_id: String },
    #[error("KMS key {key_id:?} is in region {key_region:?}, but region = {region:?}: KMS keys are regional; set region = {key_region:?} or use a key of {region}")]
    KeyRegion {
        key_id: String,
        key_region: String,
        region: String,
    },
    #[error("KMS key ARN {key_id:?} is in partition {arn_partition:?}, but region {region} is in partition {expected:?}; use the ARN the key has in its own partition")]
    KeyPartition {
        key_id: String,
        arn_partition: String,
        region: String,
        expected: &'static str,
    },
    #[error("KMS endpoint {url:?}: {reason}")]
    EndpointUrl { url: String, reason: String },
    #[error("KMS endpoint {url:?} is plain HTTP: the enclave sends the new keys to KMS Encrypt, so the host would read them; use {default} or leave kms_endpoint unset (plain HTTP is accepted only by a test enclave started with --mock-nsm)")]
    PlainHttp { url: String, default: String },
    #[error("KMS endpoint {url:?} has port {port}: AWS KMS listens on 443; drop the port (the host's kms_proxy_target decides where the bytes go, the URL only names the server the enclave verifies)")]
    Port { url: String, port: u16 },
    #[error("KMS endpoint host {host:?} is not an AWS KMS endpoint of region {region}{hint}: the enclave verifies the TLS certificate for this name, and only AWS's own names keep the keys away from the host; use {default} (the default), kms-fips.{region}.{suffix}, kms[-fips].{region}.api.aws, or a VPC endpoint name vpce-<id>-<suffix>.kms.{region}.vpce.{suffix} (other endpoints only with a test enclave, --mock-nsm)")]
    Host {
        host: String,
        region: String,
        hint: String,
        default: String,
        suffix: &'static str,
    },
}

impl KmsPolicyError {
    /// Whether the endpoint (not the region or key id) was refused.
    pub fn is_endpoint(&self) -> bool {
        matches!(
            self,
            Self::EndpointUrl { .. }
                | Self::PlainHttp { .. }
                | Self::Port { .. }
                | Self::Host { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    #[test]
    fn accepts_region_names_of_the_three_partitions() {
        for (name, partition) in [
            ("us-east-1", Partition::Aws),
            ("eu-central-2", Partition::Aws),
            ("ap-southeast-5", Partition::Aws),
            ("il-central-1", Partition::Aws),
            ("us-gov-west-1", Partition::GovCloud),
            ("cn-north-1", Partition::China),
            ("cn-northwest-1", Partition::China),
        ] {
            assert_eq!(region(name).partition(), partition, "{name}");
        }
        assert_eq!(
            region("cn-north-1").kms_host(),
            "kms.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            region("eu-west-1").kms_host(),
            "kms.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn rejects_malformed_regions_and_unsupported_partitions() {
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "useast1",
            "us-east-01",
            "us-east-123",
            "usa-east-1",
            "us-east-1a",
            "us-east-1.evil",
            "us-gov-1",
            "cn-gov-north-1",
            "us-east-1 ",
            "x-y-1",
        ] {
            let err = Region::parse(bad).unwrap_err();
            assert!(
                matches!(err, KmsPolicyError::RegionShape { .. }),
                "{bad:?}: {err}"
            );
            assert!(err.to_string().contains("us-east-1"), "{err}");
        }
        for other in ["us-iso-east-1", "us-isob-east-1", "eusc-de-east-1"] {
            assert!(
                matches!(
                    Region::parse(other),
                    Err(KmsPolicyError::RegionPartition { .. })
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn accepts_key_ids_aliases_and_arns_of_the_region() {
        let r = region("us-east-1");
        for good in [
            KEY,
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/tmkms",
            "alias/team/tmkms_validator-1",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:alias/tmkms",
        ] {
            assert_eq!(KeyId::parse(good, &r).unwrap().as_str(), good);
        }
        let gov = region("us-gov-west-1");
        KeyId::parse(
            &format!("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/{KEY}"),
            &gov,
        )
        .unwrap();
        let cn = region("cn-north-1");
        KeyId::parse(
            &format!("arn:aws-cn:kms:cn-north-1:111122223333:key/{KEY}"),
            &cn,
        )
        .unwrap();
    }

    #[test]
    fn rejects_key_ids_that_are_malformed_managed_or_of_another_region() {
        let r = region("us-east-1");
        type Expect = fn(&KmsPolicyError) -> bool;
        let shape: Expect = |e| matches!(e, KmsPolicyError::KeyIdShape { .. });
        let managed: Expect = |e| matches!(e, KmsPolicyError::AwsManagedKey { .. });
        let cases: &[(&str, Expect)] = &[
            ("", shape),
            ("1234abcd", shape),
            ("1234abcd-12ab-34cd-56ef-1234567890ag", shape),
            ("mrk-1234", shape),
            ("alias/", shape),
            ("alias/a b", shape),
            ("alias/aws/ebs", managed),
            ("arn:aws:kms:us-east-1:111122223333:alias/aws/kms", managed),
            (
                "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                |e| matches!(e, KmsPolicyError::KeyRegion { key_region, .. } if key_region == "eu-west-1"),
            ),
            (
                "arn:aws-cn:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                |e| matches!(e, KmsPolicyError::KeyPartition { .. }),
            ),
            (
                "arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                shape,
            ),
            (
                "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                shape,
            ),
            ("arn:aws:kms:us-east-1:111122223333:key/nope", shape),
            ("arn:aws:kms:us-east-1:111122223333:grant/x", shape),
            ("arn:aws:kms:us-east-1", shape),
        ];
        for (bad, expected) in cases {
            let err = KeyId::parse(bad, &r).unwrap_err();
            assert!(expected(&err), "{bad:?}: {err}");
        }
        let long = format!("alias/{}", "a".repeat(251));
        assert!(KeyId::parse(&long, &r).is_err());
        let longest = format!("alias/{}", "a".repeat(250));
        assert!(KeyId::parse(&longest, &r).is_ok());
    }

    #[test]
    fn production_accepts_only_aws_kms_names_of_the_region() {
        let r = region("us-east-1");
        for good in [
            "https://kms.us-east-1.amazonaws.com",
            "https://kms.us-east-1.amazonaws.com/",
            "https://kms.us-east-1.amazonaws.com:443",
            "https://KMS.us-east-1.amazonaws.com",
            "https://kms-fips.us-east-1.amazonaws.com",
            "https://kms.us-east-1.api.aws",
            "https://kms-fips.us-east-1.api.aws",
            "https://vpce-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com",
            "https://vpce-0123456789abcdef0-abcdefgh-us-east-1a.kms.us-east-1.vpce.amazonaws.com",
            "https://vpce-1a2b3c4d-5e6f.kms-fips.us-east-1.vpce.amazonaws.com",
        ] {
            let e = resolve_endpoint(&r, Some(good), EndpointMode::Production)
                .unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(
                e.is_aws && e.endpoint.tls && e.endpoint.port == 443,
                "{good}"
            );
            assert_eq!(e.endpoint.host, e.endpoint.host.to_ascii_lowercase());
        }
        let default = resolve_endpoint(&r, None, EndpointMode::Production).unwrap();
        assert_eq!(
            default.endpoint.to_string(),
            "https://kms.us-east-1.amazonaws.com"
        );
        let cn = region("cn-north-1");
        for good in [
            "https://kms.cn-north-1.amazonaws.com.cn",
            "https://vpce-0123456789abcdef0-abcdefgh.kms.cn-north-1.vpce.amazonaws.com.cn",
        ] {
            assert!(resolve_endpoint(&cn, Some(good), EndpointMode::Production).is_ok());
        }
        assert_eq!(
            resolve_endpoint(&cn, None, EndpointMode::Production)
                .unwrap()
                .endpoint
                .host,
            "kms.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn production_refuses_plain_http_other_ports_and_foreign_hosts() {
        let r = region("us-east-1");
        let plain = resolve_endpoint(&r, Some("http://127.0.0.1:4566"), EndpointMode::Production)
            .unwrap_err();
        assert!(matches!(plain, KmsPolicyError::PlainHttp { .. }), "{plain}");
        assert!(plain.to_string().contains("--mock-nsm"), "{plain}");
        let plain_aws = resolve_endpoint(
            &r,
            Some("http://kms.us-east-1.amazonaws.com"),
            EndpointMode::Production,
        )
        .unwrap_err();
        assert!(matches!(plain_aws, KmsPolicyError::PlainHttp { .. }));
        let port = resolve_endpoint(
            &r,
            Some("https://kms.us-east-1.amazonaws.com:8443"),
            EndpointMode::Production,
        )
        .unwrap_err();
        assert!(
            matches!(port, KmsPolicyError::Port { port: 8443, .. }),
            "{port}"
        );
        for (foreign, hint) in [
            ("https://evil.example", ""),
            ("https://127.0.0.1", ""),
            ("https://[::1]", ""),
            ("https://localhost", ""),
            ("https://kms.us-east-1.amazonaws.com.evil.example", "only looks like"),
            ("https://kms.us-east-1.amazonaws.com.", ""),
            ("https://amazonaws.com", ""),
            ("https://kms.amazonaws.com", ""),
            ("https://evil.kms.us-east-1.amazonaws.com", ""),
            ("https://kms.us-east-1.amazonaws.com.cn", ""),
            ("https://kms.eu-west-1.amazonaws.com", "region eu-west-1"),
            ("https://kms-fips.us-west-2.amazonaws.com", "region us-west-2"),
            ("https://s3.us-east-1.amazonaws.com", ""),
            ("https://vpce-0123456789abcdef0-abcdefgh.kms.us-west-2.vpce.amazonaws.com", "region us-west-2"),
            ("https://vpce-0123456789abcdef0-abcdefgh-us-west-2a.kms.us-east-1.vpce.amazonaws.com", ""),
            ("https://vpce-0123-abcdefgh.kms.us-east-1.vpce.amazonaws.com", ""),
            ("https://vpce-0123456789abcdef0-abc.def.kms.us-east-1.vpce.amazonaws.com", ""),
            ("https://vpce-0123456789abcdef0-abcdefghi.kms.us-east-1.vpce.amazonaws.com", ""),
            ("https://evil-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com", ""),
            ("https://vpce-0123456789abcdef0-abcdefgh.s3.us-east-1.vpce.amazonaws.com", ""),
        ] {
            let err = resolve_endpoint(&r, Some(foreign), EndpointMode::Production)
                .unwrap_err();
            assert!(
                matches!(&err, KmsPolicyError::Host { hint: h, .. } if h.contains(hint)),
                "{foreign}: {err}"
            );
            let text = err.to_string();
            assert!(
                text.contains("kms.us-east-1.amazonaws.com") && text.contains("--mock-nsm"),
                "{text}"
            );
        }
        // No FIPS or dual-stack names in China.
        let cn = region("cn-north-1");
        for foreign in [
            "https://kms-fips.cn-north-1.amazonaws.com.cn",
            "https://kms.cn-north-1.api.aws",
            "https://kms.cn-north-1.amazonaws.com",
        ] {
            assert!(
                resolve_endpoint(&cn, Some(foreign), EndpointMode::Production).is_err(),
                "{foreign}"
            );
        }
        for malformed in [
            "ftp://kms.us-east-1.amazonaws.com",
            "https://kms.us-east-1.amazonaws.com/path",
        ] {
            assert!(matches!(
                resolve_endpoint(&r, Some(malformed), EndpointMode::Production),
                Err(KmsPolicyError::EndpointUrl { .. })
            ));
        }
    }

    #[test]
    fn test_mode_accepts_any_parseable_endpoint_and_says_whether_it_is_aws() {
        let r = region("us-east-1");
        let local =
            resolve_endpoint(&r, Some("http://127.0.0.1:4566"), EndpointMode::Test).unwrap();
        assert!(!local.is_aws);
        assert_eq!(local.endpoint.to_string(), "http://127.0.0.1:4566");
        let aws = resolve_endpoint(
            &r,
            Some("https://kms.us-east-1.amazonaws.com"),
            EndpointMode::Test,
        )
        .unwrap();
        assert!(aws.is_aws);
        assert!(resolve_endpoint(&r, Some("ftp://x"), EndpointMode::Test).is_err());
    }

    #[test]
    fn target_checks_region_then_endpoint_then_key() {
        let t = KmsTarget::resolve("eu-west-1", "alias/k", None, EndpointMode::Production).unwrap();
        assert_eq!(t.config().region, "eu-west-1");
        assert_eq!(
            t.endpoint().to_string(),
            "https://kms.eu-west-1.amazonaws.com"
        );
        assert!(t.is_aws_endpoint());
        assert!(matches!(
            KmsTarget::resolve(
                "bogus",
                "also bogus",
                Some("http://x"),
                EndpointMode::Production
            ),
            Err(KmsPolicyError::RegionShape { .. })
        ));
        let err = KmsTarget::resolve(
            "eu-west-1",
            "bogus",
            Some("http://x"),
            EndpointMode::Production,
        )
        .unwrap_err();
        assert!(err.is_endpoint(), "{err}");
        assert!(
            !KmsTarget::resolve("eu-west-1", "bogus", None, EndpointMode::Production)
                .unwrap_err()
                .is_endpoint()
        );
    }
}

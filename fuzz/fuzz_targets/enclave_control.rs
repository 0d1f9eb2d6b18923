//! The control messages the enclaves accept from their untrusted hosts:
//! JSON `Request`s of the SGX enclave (`tmkms_light_sgx_app::protocol`) and
//! the Nitro enclave (`tmkms_nitro_enclave::protocol`), bare and as they
//! arrive — in a `tmkms_light::link` frame, read in pieces.
//!
//! Input: the bytes, parsed as a bare JSON message and as a framed stream
//! (read in chunks of 1..=7 bytes taken from the input itself).
//!
//! Invariants besides "never panics":
//! * an accepted request survives a JSON round trip unchanged (SGX: `Eq`;
//!   Nitro, which has no `Eq` because it holds credentials: the same JSON);
//! * `read_frame` returns exactly the declared body when it fits the cap
//!   and was delivered in full, `Closed` on an empty stream, and an error
//!   otherwise; `recv_json` agrees with `read_frame` + `serde_json`;
//! * the Nitro init attestation's user data splits and rebuilds to itself;
//! * Nitro state records in an answer convert to the core's types exactly
//!   when each is 512 bytes, and back unchanged.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use tmkms_light::enclave::ImportedRecords;
use tmkms_light::link::{read_frame, recv_json, LinkError};
use tmkms_light::state::record::SLOT_LEN;
use tmkms_light_sgx_app::protocol as sgx;
use tmkms_nitro_enclave::protocol as nitro;

/// A small cap, so both "fits" and "too large" are reachable.
const CAP: usize = 2048;

/// Hands out the input in reads of 1..=7 bytes, sizes taken from the input.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    reads: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self
            .sizes
            .get(self.reads % self.sizes.len().max(1))
            .map_or(1, |b| usize::from(b % 7) + 1);
        self.reads += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn check_requests(json: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<sgx::Request>(json) {
        let again = serde_json::to_vec(&request).expect("serializes");
        let back: sgx::Request = serde_json::from_slice(&again).expect("re-parses");
        assert_eq!(back, request, "SGX request changed in a JSON round trip");
    }
    if let Ok(request) = serde_json::from_slice::<nitro::Request>(json) {
        let again = serde_json::to_vec(&request).expect("serializes");
        let back: nitro::Request = serde_json::from_slice(&again).expect("re-parses");
        assert_eq!(
            serde_json::to_vec(&back).expect("serializes"),
            again,
            "Nitro request changed in a JSON round trip"
        );
    }
    // The answers, which the hosts parse from the enclaves.
    let _ = serde_json::from_slice::<sgx::Response>(json);
    if let Ok(response) = serde_json::from_slice::<nitro::Response>(json) {
        check_nitro_records(&response);
    }
}

/// State records in a Nitro answer convert to the core's types exactly when
/// every one has the record length, and convert back unchanged.
fn check_nitro_records(response: &nitro::Response) {
    let slots: Vec<&nitro::WireSlot> = match response {
        nitro::Response::Initialized { state_records, .. } => state_records.iter().collect(),
        nitro::Response::StateImported { records, .. } => {
            let converted = ImportedRecords::try_from(records);
            let lengths_ok = match records {
                nitro::WireRecords::Create(slots) => slots.iter().all(|s| s.0.len() == SLOT_LEN),
                nitro::WireRecords::Append(slot) => slot.0.len() == SLOT_LEN,
            };
            assert_eq!(converted.is_ok(), lengths_ok, "record length check");
            if let Ok(converted) = converted {
                assert_eq!(&nitro::WireRecords::from(&converted), records);
            }
            return;
        }
        _ => return,
    };
    for slot in slots {
        assert_eq!(slot.record().is_ok(), slot.0.len() == SLOT_LEN);
    }
}

fuzz_target!(|data: &[u8]| {
    check_requests(data);

    // What parses as an init attestation's user data encodes back to the
    // same bytes (one encoding per meaning).
    if let Ok(parsed) = nitro::parse_init_user_data(data) {
        let encoded = nitro::init_user_data(&parsed).expect("parsed user data encodes");
        assert_eq!(encoded, data);
    }

    let pieces = || Pieces {
        data,
        sizes: data,
        reads: 0,
    };
    let frame = read_frame(&mut pieces(), CAP);
    let declared = data
        .first_chunk::<4>()
        .map(|len| u32::from_le_bytes(*len) as usize);
    match (&frame, declared) {
        (Ok(body), Some(len)) => {
            assert!(len <= CAP);
            assert_eq!(body[..], data[4..4 + len]);
            check_requests(body);
        }
        (Err(LinkError::Closed), _) => assert!(data.is_empty()),
        (Err(LinkError::TooLarge { len, max }), Some(declared)) => {
            assert_eq!((*len, *max), (declared, CAP));
            assert!(declared > CAP);
        }
        (Err(_), Some(len)) => assert!(len <= CAP && data.len() < 4 + len, "{frame:?}"),
        (Err(_), None) => assert!(!data.is_empty()),
        (Ok(_), None) => panic!("a frame without a length"),
    }

    let via_recv = recv_json::<_, sgx::Request>(&mut pieces(), CAP);
    let direct = frame
        .as_ref()
        .ok()
        .map(|body| serde_json::from_slice::<sgx::Request>(body));
    match (&via_recv, &direct) {
        (Ok(a), Some(Ok(b))) => assert_eq!(a, b),
        (Err(_), None | Some(Err(_))) => {}
        _ => panic!("recv_json disagrees with read_frame + serde_json"),
    }
});

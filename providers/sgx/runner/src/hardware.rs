//! Real SGX: the signed enclave (`.sgxs` + `.sig`) loaded into this process
//! with Fortanix's EDP runner, its named streams answered in-process, and
//! DCAP quotes from AESM for `cloud-wrap -d`.
//!
//! The enclave opens `init`, `state` and `node:<path>` with
//! `TcpStream::connect(name)`; EDP hands the name to the runner's stream
//! router. For those names the router makes a Unix socket pair, serves one end
//! with the same [`crate::streams::serve_stream`] the simulation uses, and
//! gives the other to the enclave, so both modes carry the same bytes through
//! the same code.
//! Every other address (the node's `tcp://` endpoint) is a real TCP
//! connection made by EDP's default router.
//!
//! The loader needs the `hardware` cargo feature. The pure parts (which names
//! are ours, which AESM key is ECDSA, whether a quote carries our REPORT, the
//! Azure request shape) are built and tested in every build.

#![cfg_attr(not(feature = "hardware"), allow(dead_code))]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use thiserror::Error;
use tmkms_light_sgx_protocol::{STREAM_EVENTS, STREAM_INIT, STREAM_NODE_PREFIX, STREAM_STATE};

#[cfg(feature = "hardware")]
pub(crate) use self::sgx::{launch, Dcap, HardwareError, Running};

/// Whether the enclave's connect to `addr` is one of the runner's own
/// streams rather than a network address.
fn is_host_stream(addr: &str) -> bool {
    addr == STREAM_INIT
        || addr == STREAM_STATE
        || addr == STREAM_EVENTS
        || addr.starts_with(STREAM_NODE_PREFIX)
}

/// `algorithm_id` of an ECDSA-P256 (DCAP) attestation key.
const SGX_QL_ALG_ECDSA_P256: u32 = 2;
/// Size of one `sgx_att_key_id_ext_t` in AESM's key id list.
const ATT_KEY_ID_SIZE: usize = 256;
/// Offset of `algorithm_id` in the packed `sgx_ql_att_key_id_t` at the start
/// of a key id: id, version, mrsigner_length (2 bytes each), mrsigner (48),
/// prod_id (4), extended_prod_id (16), config_id (64), family_id (16).
const ALGORITHM_ID_OFFSET: usize = 154;

/// The ECDSA-P256 (DCAP) key among the attestation key ids AESM supports;
/// AESM may also offer EPID, which Azure does not take.
fn pick_ecdsa_key_id(ids: Vec<Vec<u8>>) -> Option<Vec<u8>> {
    ids.into_iter().find(|id| {
        id.len() == ATT_KEY_ID_SIZE
            && id
                .get(ALGORITHM_ID_OFFSET..ALGORITHM_ID_OFFSET + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .is_some_and(|b| u32::from_le_bytes(b) == SGX_QL_ALG_ECDSA_P256)
    })
}

/// Length of a DCAP quote header (versions 3 and 4).
const QUOTE_HEADER_LEN: usize = 48;
/// Length of the REPORT body (`sgx_report_body_t`) at the start of a REPORT,
/// copied into the quote right after its header.
const REPORT_BODY_LEN: usize = 384;

/// Whether `quote` quotes `report`: its enclave body must be the REPORT's
/// body byte for byte (MRENCLAVE, MRSIGNER, attributes, report data). Checked
/// so that a confused or hostile AESM cannot hand back a quote of something
/// else that the operator then submits as ours.
fn quote_binds_report(quote: &[u8], report: &[u8]) -> bool {
    match (
        quote.get(QUOTE_HEADER_LEN..QUOTE_HEADER_LEN + REPORT_BODY_LEN),
        report.get(..REPORT_BODY_LEN),
    ) {
        (Some(quoted), Some(body)) => quoted == body,
        _ => false,
    }
}

/// The body of an Azure Attestation `AttestSgxEnclave` request: the quote,
/// and as runtime data the DER public key whose SHA-256 the enclave put in
/// the first 32 bytes of the report data, which is exactly what Azure checks
/// for `dataType: "Binary"`. Azure's binary fields are unpadded base64url.
pub(crate) fn azure_attest_request(quote: &[u8], public_key_der: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "quote": URL_SAFE_NO_PAD.encode(quote),
        "runtimeData": {
            "data": URL_SAFE_NO_PAD.encode(public_key_der),
            "dataType": "Binary",
        },
    })
}

/// Failures of `cloud-wrap -d`.
#[derive(Debug, Error)]
pub enum DcapError {
    #[cfg(not(feature = "hardware"))]
    #[error(
        "-d (DCAP quote) needs a runner built with SGX support (cargo build --features hardware)"
    )]
    NotBuilt,
    #[error("AESM {what}: {reason}; is aesmd running (/var/run/aesmd/aesm.socket) with the DCAP quoting plugin (libsgx-aesm-ecdsa-plugin, libsgx-dcap-default-qpl and a reachable PCCS)?")]
    Aesm { what: &'static str, reason: String },
    #[error("AESM offers no ECDSA (DCAP) attestation key, only EPID or none; install the DCAP quoting plugin (libsgx-aesm-ecdsa-plugin, libsgx-dcap-default-qpl) and configure the PCCS")]
    NoEcdsaKey,
    #[error("AESM returned a quoting enclave TARGETINFO of {0} bytes, expected 512")]
    TargetInfo(usize),
    #[error("the enclave returned a REPORT of {0} bytes, expected 432")]
    Report(usize),
    #[error("AESM returned a quote that does not carry the enclave's REPORT; not writing it")]
    QuoteMismatch,
}

/// Without the `hardware` feature there is no quoting: `connect` fails with
/// [`DcapError::NotBuilt`] and no value of this type exists.
#[cfg(not(feature = "hardware"))]
#[derive(Debug)]
pub(crate) enum Dcap {}

#[cfg(not(feature = "hardware"))]
impl Dcap {
    pub(crate) fn connect() -> Result<Self, DcapError> {
        Err(DcapError::NotBuilt)
    }

    pub(crate) fn target_info(&self) -> &[u8] {
        match *self {}
    }

    pub(crate) fn quote(&self, _report: &[u8]) -> Result<Vec<u8>, DcapError> {
        match *self {}
    }
}

#[cfg(feature = "hardware")]
mod sgx {
    use std::future::Future;
    use std::io;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::ExitStatusExt;
    use std::path::{Path, PathBuf};
    use std::pin::Pin;
    use std::process::ExitStatus;
    use std::sync::{mpsc, Arc};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use aesm_client::AesmClient;
    use enclave_runner::stream_router::{AsyncListener, AsyncStream, OsStreamRouter, StreamRouter};
    use sgx_isa::{Report, Targetinfo};
    use sgxs_loaders::isgx::Device;
    use thiserror::Error;
    use tracing::{error, info};

    use super::{is_host_stream, pick_ecdsa_key_id, quote_binds_report, DcapError};
    use crate::settings::SgxSettings;
    use crate::streams::{serve_stream, ConnectBackError, Streams, CONNECT_BACK_TIMEOUT};

    /// Why a real enclave could not be loaded or run.
    #[derive(Debug, Error)]
    pub enum HardwareError {
        #[error("cannot open the SGX device (/dev/sgx_enclave, /dev/sgx/enclave or /dev/isgx): {0}; install the SGX driver (in the kernel since Linux 5.11) and let this user open it (usually the sgx group)")]
        Device(#[source] io::Error),
        #[error("cannot read the SIGSTRUCT {path}: {source}")]
        Sigstruct {
            path: PathBuf,
            #[source]
            source: io::Error,
        },
        #[error("cannot load the enclave {path}: {reason}; check that the .sig was made for this .sgxs and, with the legacy driver, that aesmd is running for the launch token")]
        Load { path: PathBuf, reason: String },
        #[error("the enclave stopped with an error: {0}")]
        Run(String),
        #[error("cannot start the enclave thread: {0}")]
        Thread(#[source] io::Error),
        #[error(transparent)]
        ConnectBack(#[from] ConnectBackError),
    }

    /// A real enclave running on its own thread of this process.
    #[derive(Debug)]
    pub(crate) struct Running {
        thread: Option<JoinHandle<Result<(), HardwareError>>>,
        status: Option<ExitStatus>,
    }

    impl Running {
        /// The enclave's end as an exit status (0 after a clean return, 1
        /// after an error or a panic, which is logged), once its thread is
        /// done.
        pub(crate) fn try_wait(&mut self) -> Option<ExitStatus> {
            if let Some(result) = self.finished() {
                let code = match result {
                    Ok(()) => 0,
                    Err(e) => {
                        error!(error = %e, "the SGX enclave stopped");
                        1
                    }
                };
                self.status = Some(ExitStatus::from_raw(code << 8));
            }
            self.status
        }

        /// The run thread's result, once, when it has ended.
        fn finished(&mut self) -> Option<Result<(), HardwareError>> {
            if !self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                return None;
            }
            let thread = self.thread.take()?;
            Some(
                thread.join().unwrap_or_else(|_| {
                    Err(HardwareError::Run("the enclave thread panicked".into()))
                }),
            )
        }

        /// Wait for the run thread to end (it is ending) and take its result.
        fn join(&mut self) -> Result<(), HardwareError> {
            match self.thread.take() {
                Some(thread) => thread.join().unwrap_or_else(|_| {
                    Err(HardwareError::Run("the enclave thread panicked".into()))
                }),
                None => Ok(()),
            }
        }
    }

    /// Load the enclave of `settings` on its own thread and wait for its
    /// control stream.
    pub(crate) fn launch(
        settings: &SgxSettings,
        streams: Arc<Streams>,
        init: &mpsc::Receiver<UnixStream>,
    ) -> Result<(Running, UnixStream), HardwareError> {
        let enclave = settings.enclave_path.clone();
        let sigstruct = settings.sigstruct_path.clone();
        let router = HostRouter {
            streams,
            os: OsStreamRouter::new(),
        };
        let thread = thread::Builder::new()
            .name("sgx-enclave".into())
            .spawn(move || run(&enclave, &sigstruct, router))
            .map_err(HardwareError::Thread)?;
        let mut running = Running {
            thread: Some(thread),
            status: None,
        };
        let deadline = Instant::now() + CONNECT_BACK_TIMEOUT;
        loop {
            match init.recv_timeout(Duration::from_millis(50)) {
                Ok(control) => return Ok((running, control)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // The router, and with it the sender, is gone: the enclave
                // thread is ending without having opened `init`.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    running.join()?;
                    return Err(ConnectBackError::ExitedEarly(ExitStatus::from_raw(0)).into());
                }
            }
            if let Some(result) = running.finished() {
                result?;
                return Err(ConnectBackError::ExitedEarly(ExitStatus::from_raw(0)).into());
            }
            if Instant::now() >= deadline {
                return Err(ConnectBackError::NoConnection(CONNECT_BACK_TIMEOUT).into());
            }
        }
    }

    fn run(enclave: &Path, sigstruct: &Path, router: HostRouter) -> Result<(), HardwareError> {
        // The in-kernel driver needs no launch token; the legacy one gets it
        // from AESM.
        let device = Device::new()
            .map_err(HardwareError::Device)?
            .einittoken_provider(AesmClient::new())
            .build();
        let mut platform = enclave_runner_sgx::EnclaveBuilder::<Device>::new(enclave);
        platform
            .signature(sigstruct)
            .map_err(|source| HardwareError::Sigstruct {
                path: sigstruct.to_path_buf(),
                source,
            })?;
        let mut builder =
            enclave_runner::EnclaveBuilder::<_, enclave_runner::Command>::new(platform);
        builder.stream_router(Box::new(router) as Box<dyn StreamRouter + Send + Sync>);
        builder.args(crate::launcher::enclave_args());
        let command = builder.build(device).map_err(|e| HardwareError::Load {
            path: enclave.to_path_buf(),
            reason: format!("{e:#}"),
        })?;
        info!(enclave = %enclave.display(), "SGX enclave loaded");
        command
            .run()
            .map_err(|e| HardwareError::Run(format!("{e:#}")))
    }

    /// Answers the enclave's connects: the runner's own stream names
    /// in-process, everything else (and stdio, and binds) as EDP does by
    /// default.
    struct HostRouter {
        streams: Arc<Streams>,
        os: Box<dyn StreamRouter + Send + Sync>,
    }

    type ConnectFuture<'f> =
        Pin<Box<dyn Future<Output = io::Result<Box<dyn AsyncStream>>> + Send + 'f>>;
    type BindFuture<'f> =
        Pin<Box<dyn Future<Output = io::Result<Box<dyn AsyncListener>>> + Send + 'f>>;

    impl HostRouter {
        /// A socket pair for stream `name`: one end served on its own thread,
        /// the other for the enclave.
        fn open_host_stream(&self, name: &str) -> io::Result<UnixStream> {
            let (enclave_end, host_end) = UnixStream::pair()?;
            let streams = Arc::clone(&self.streams);
            let name = name.to_owned();
            thread::Builder::new()
                .name("enclave-stream".into())
                .spawn(move || serve_stream(&name, host_end, &streams))?;
            enclave_end.set_nonblocking(true)?;
            Ok(enclave_end)
        }
    }

    impl StreamRouter for HostRouter {
        fn basic_streams(&self) -> Vec<Box<dyn AsyncStream>> {
            self.os.basic_streams()
        }

        fn connect_stream<'f>(
            &'f self,
            addr: &'f str,
            local_addr: Option<&'f mut String>,
            peer_addr: Option<&'f mut String>,
        ) -> ConnectFuture<'f> {
            if !is_host_stream(addr) {
                return self.os.connect_stream(addr, local_addr, peer_addr);
            }
            let opened = self.open_host_stream(addr);
            Box::pin(async move {
                // Registering with the reactor needs the runtime that polls
                // this future.
                let stream = tokio::net::UnixStream::from_std(opened?)?;
                Ok(Box::new(stream) as Box<dyn AsyncStream>)
            })
        }

        fn bind_stream<'f>(
            &'f self,
            addr: &'f str,
            local_addr: Option<&'f mut String>,
        ) -> BindFuture<'f> {
            self.os.bind_stream(addr, local_addr)
        }
    }

    /// The DCAP quoting enclave, reached through AESM.
    #[derive(Debug)]
    pub(crate) struct Dcap {
        aesm: AesmClient,
        key_id: Vec<u8>,
        target_info: Vec<u8>,
    }

    fn aesm(what: &'static str) -> impl FnOnce(aesm_client::Error) -> DcapError {
        move |e| DcapError::Aesm {
            what,
            reason: e.to_string(),
        }
    }

    impl Dcap {
        /// Pick AESM's ECDSA attestation key and get its quoting enclave's
        /// TARGETINFO, for the enclave's REPORT.
        pub(crate) fn connect() -> Result<Self, DcapError> {
            let aesm = AesmClient::new();
            let ids = aesm
                .get_supported_att_key_ids()
                .map_err(self::aesm("listing attestation keys"))?;
            let key_id = pick_ecdsa_key_id(ids).ok_or(DcapError::NoEcdsaKey)?;
            let info = aesm
                .init_quote_ex(key_id.clone())
                .map_err(self::aesm("initialising the quote"))?;
            let target_info = info.target_info().to_vec();
            if Targetinfo::try_copy_from(&target_info).is_none() {
                return Err(DcapError::TargetInfo(target_info.len()));
            }
            Ok(Self {
                aesm,
                key_id,
                target_info,
            })
        }

        /// The quoting enclave's TARGETINFO (512 bytes).
        pub(crate) fn target_info(&self) -> &[u8] {
            &self.target_info
        }

        /// A DCAP quote of `report` (made for [`Self::target_info`]), checked
        /// to carry that REPORT.
        pub(crate) fn quote(&self, report: &[u8]) -> Result<Vec<u8>, DcapError> {
            let parsed = Report::try_copy_from(report).ok_or(DcapError::Report(report.len()))?;
            // The quoting enclave's own REPORT comes back targeted at our
            // enclave; the nonce only freshens it. Neither is used further:
            // the quote's signature chain is what a verifier checks.
            let app_target = AsRef::<[u8]>::as_ref(&Targetinfo::from(parsed)).to_vec();
            let mut nonce = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
            let result = self
                .aesm
                .get_quote_ex(
                    self.key_id.clone(),
                    report.to_vec(),
                    Some(app_target),
                    nonce.to_vec(),
                )
                .map_err(self::aesm("quoting the REPORT"))?;
            let quote = result.quote().to_vec();
            if !quote_binds_report(&quote, report) {
                return Err(DcapError::QuoteMismatch);
            }
            Ok(quote)
        }
    }

    #[cfg(test)]
    mod tests {
        use std::io::{Read, Write};
        use std::net::TcpListener;
        use std::os::unix::net::UnixListener;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use super::*;
        use crate::streams::Plumbing;

        fn runtime() -> tokio::runtime::Runtime {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        }

        /// The enclave's end of a connect, pinned for the tokio I/O helpers.
        fn connect(
            rt: &tokio::runtime::Runtime,
            router: &HostRouter,
            addr: &str,
            peer: Option<&mut String>,
        ) -> Pin<Box<dyn AsyncStream>> {
            Box::into_pin(
                rt.block_on(router.connect_stream(addr, None, peer))
                    .unwrap(),
            )
        }

        fn router(plumbing: Plumbing) -> (HostRouter, mpsc::Receiver<UnixStream>) {
            let (streams, init) = Streams::new(plumbing);
            let router = HostRouter {
                streams,
                os: OsStreamRouter::new(),
            };
            (router, init)
        }

        #[test]
        fn init_connect_reaches_the_launcher_both_ways() {
            let rt = runtime();
            let (router, init) = router(Plumbing::default());
            let mut enclave = connect(&rt, &router, "init", None);
            let mut control = init.recv_timeout(Duration::from_secs(5)).unwrap();
            control.write_all(b"request").unwrap();
            let mut got = [0u8; 7];
            rt.block_on(enclave.read_exact(&mut got)).unwrap();
            assert_eq!(&got, b"request");
            rt.block_on(enclave.write_all(b"answer")).unwrap();
            let mut got = [0u8; 6];
            control.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"answer");

            // A second `init` gets a stream that the runner closes at once.
            let mut second = connect(&rt, &router, "init", None);
            let mut rest = Vec::new();
            assert_eq!(rt.block_on(second.read_to_end(&mut rest)).unwrap(), 0);
            assert!(init.try_recv().is_err());
        }

        #[test]
        fn tcp_addresses_go_to_the_network_not_to_the_runner() {
            let rt = runtime();
            let (router, init) = router(Plumbing::default());
            let node = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = node.local_addr().unwrap().to_string();
            let mut peer = String::new();
            let mut enclave = connect(&rt, &router, &addr, Some(&mut peer));
            assert_eq!(peer, addr);
            let (mut accepted, _) = node.accept().unwrap();
            rt.block_on(enclave.write_all(b"ping")).unwrap();
            let mut got = [0u8; 4];
            accepted.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
            assert!(init.try_recv().is_err());
        }

        #[test]
        fn node_stream_is_spliced_to_the_configured_socket_only() {
            let rt = runtime();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("node.sock");
            let node = UnixListener::bind(&path).unwrap();
            let (router, _init) = router(Plumbing {
                state: None,
                node_sockets: vec![path.clone()],
                metrics: None,
            });
            let name = format!("node:{}", path.display());
            let mut enclave = connect(&rt, &router, &name, None);
            let (mut accepted, _) = node.accept().unwrap();
            accepted.write_all(b"vote").unwrap();
            let mut got = [0u8; 4];
            rt.block_on(enclave.read_exact(&mut got)).unwrap();
            assert_eq!(&got, b"vote");

            // A socket that is not configured: the stream closes, nothing dials.
            let other = format!("node:{}", dir.path().join("other.sock").display());
            let mut refused = connect(&rt, &router, &other, None);
            let mut rest = Vec::new();
            assert_eq!(rt.block_on(refused.read_to_end(&mut rest)).unwrap(), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn only_the_runners_stream_names_are_served_by_the_runner() {
        for name in ["init", "state", "node:/run/cometbft/privval.sock"] {
            assert!(is_host_stream(name), "{name}");
        }
        for addr in [
            "127.0.0.1:26658",
            "[::1]:26658",
            "validator.example:26658",
            "initial:1",
            "states:1",
            "node",
        ] {
            assert!(!is_host_stream(addr), "{addr}");
        }
    }

    fn key_id(algorithm: u32) -> Vec<u8> {
        let mut id = vec![0u8; ATT_KEY_ID_SIZE];
        id[ALGORITHM_ID_OFFSET..ALGORITHM_ID_OFFSET + 4].copy_from_slice(&algorithm.to_le_bytes());
        id
    }

    #[test]
    fn picks_the_ecdsa_key_and_never_epid() {
        let epid = key_id(0);
        let mut ecdsa = key_id(SGX_QL_ALG_ECDSA_P256);
        ecdsa[0] = 0xEC;
        assert_eq!(
            pick_ecdsa_key_id(vec![epid.clone(), ecdsa.clone()]),
            Some(ecdsa)
        );
        assert_eq!(pick_ecdsa_key_id(vec![epid]), None);
        assert_eq!(pick_ecdsa_key_id(vec![key_id(3)]), None, "P-384");
        // A truncated id is not read past its end.
        assert_eq!(
            pick_ecdsa_key_id(vec![key_id(SGX_QL_ALG_ECDSA_P256)[..200].to_vec()]),
            None
        );
        assert_eq!(pick_ecdsa_key_id(Vec::new()), None);
    }

    #[test]
    fn a_quote_must_carry_the_reports_body() {
        let report: Vec<u8> = (0..432u32).map(|i| (i * 7) as u8).collect();
        let mut quote = vec![3, 0, 2, 0];
        quote.resize(QUOTE_HEADER_LEN, 0);
        quote.extend_from_slice(&report[..REPORT_BODY_LEN]);
        quote.extend_from_slice(&[0x55; 1000]);
        assert!(quote_binds_report(&quote, &report));

        let mut other = quote.clone();
        other[QUOTE_HEADER_LEN + 320] ^= 1; // report data
        assert!(!quote_binds_report(&other, &report));
        assert!(!quote_binds_report(&quote[..400], &report));
        assert!(!quote_binds_report(&quote, &report[..100]));
    }

    #[test]
    fn azure_request_has_the_attest_sgx_enclave_shape() {
        // Bytes that base64url and base64 encode differently ('-'/'_' vs
        // '+'/'/') and that standard base64 would pad.
        let quote = vec![0xfb, 0xff, 0xbf, 0x00, 0x3e];
        let der = vec![0x30, 0x82, 0xfe, 0xff, 0x01, 0x00, 0x01];
        let json = azure_attest_request(&quote, &der);
        let text = serde_json::to_string(&json).unwrap();
        assert_eq!(
            text,
            r#"{"quote":"-_-_AD4","runtimeData":{"data":"MIL-_wEAAQ","dataType":"Binary"}}"#
        );
        let data = URL_SAFE_NO_PAD
            .decode(json["runtimeData"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, der);
        // Azure checks that the first 32 bytes of the quote's report data
        // are SHA-256 of the decoded runtime data: the enclave binds exactly
        // that.
        let bound = tmkms_light_sgx_seal::report_data_for(&der);
        assert_eq!(bound[..32], Sha256::digest(&data)[..]);
    }
}

//! One conformance run, shared by every provider's test: the node's side of
//! a cell of the matrix ([`Cell`]: listener and chain id), the whole
//! scenario suite against the signer started for it, then the checks of the
//! signer afterwards (key, durable state, log). Each provider's test only
//! sets its signer up and adds what is its own.

use crate::harness::listen;
use crate::home::SignerHome;
use crate::scenario::{run_all, SignerAfterSuite, SuiteConfig, SuiteReport};
use crate::{Dialect, NodeListener};

/// The `max_height` every conformance run configures (and the suite
/// checks the signer refuses above).
pub const CONFORMANCE_MAX_HEIGHT: i64 = 1_000_000;

/// The config line that sets [`CONFORMANCE_MAX_HEIGHT`], for the top of a
/// signer's config.
pub fn max_height_setting() -> String {
    format!("max_height = {CONFORMANCE_MAX_HEIGHT}")
}

/// What the run reads from the signer under test.
pub struct SignerUnderTest<'a> {
    /// Its home: the log the checks read is the home's signer log.
    pub home: &'a SignerHome,
    /// The consensus public key it was set up with (not from the wire).
    pub pubkey: [u8; 32],
    /// The height of its durable state, read after the suite.
    pub state_height: &'a dyn Fn() -> u64,
    /// More text for failure messages (e.g. an enclave's own log).
    pub diagnostics: &'a dyn Fn() -> String,
}

impl std::fmt::Debug for SignerUnderTest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerUnderTest")
            .field("home", &self.home.dir.path())
            .field("pubkey", &hex::encode(self.pubkey))
            .finish_non_exhaustive()
    }
}

/// One cell of the conformance matrix, on the node's side: the listener
/// the signer dials and the cell's chain id.
#[derive(Debug)]
pub struct Cell {
    pub listener: NodeListener,
    /// `{prefix}-{dialect}`, the dialect's dots as dashes.
    pub chain: String,
    /// Whether the signer connects over TCP (else a Unix socket).
    pub tcp: bool,
}

// Test support: a cell that cannot be set up fails the calling test.
#[allow(clippy::expect_used)]
impl Cell {
    /// The cell for `dialect` (as a signer's config spells it) over TCP or
    /// a Unix socket, with a fresh directory for the signer's home; the
    /// Unix socket is in that directory, TCP is on port 0.
    pub fn new(chain_prefix: &str, dialect: &str, tcp: bool) -> (tempfile::TempDir, Cell) {
        let dir = tempfile::tempdir().expect("a temp directory");
        let chain = format!("{chain_prefix}-{}", dialect.replace('.', "-"));
        let dialect: Dialect = dialect.parse().expect("a dialect of the matrix");
        let listener = listen(dir.path(), tcp, dialect).expect("a node listener");
        (
            dir,
            Cell {
                listener,
                chain,
                tcp,
            },
        )
    }

    /// The address the signer is configured to dial.
    pub fn address(&self) -> String {
        self.listener.local_addr()
    }

    /// Runs the suite against the signer already started for this cell and
    /// panics, with the signer's log, when it aborts or the signer fails a
    /// check; returns the report and the log for the provider's own
    /// assertions.
    // A test's assertion: failing the calling test is this function's job.
    #[allow(clippy::panic)]
    pub fn run(&self, signer: &SignerUnderTest<'_>) -> (SuiteReport, String) {
        let (listener, tcp) = (&self.listener, self.tcp);
        let mut cfg = SuiteConfig::new(&self.chain);
        cfg.max_height = Some(CONFORMANCE_MAX_HEIGHT);
        cfg.normal_heights = 20;
        let dialect = listener.dialect();
        let report = match run_all(listener, &cfg) {
            Ok(report) => report,
            Err(e) => panic!(
                "{dialect} tcp={tcp}: suite aborted: {e}\nsigner log:\n{}\n{}",
                signer.home.log(),
                (signer.diagnostics)()
            ),
        };
        let log = signer.home.log();
        let problems = report.check_signer(&SignerAfterSuite {
            pubkey: signer.pubkey,
            state_height: (signer.state_height)(),
            log: &log,
            tcp,
        });
        assert!(
            problems.is_empty(),
            "{dialect} tcp={tcp}:\n{}\nsigner log:\n{log}\n{}",
            problems.join("\n"),
            (signer.diagnostics)()
        );
        (report, log)
    }
}

/// No extra diagnostics.
pub fn no_diagnostics() -> String {
    String::new()
}

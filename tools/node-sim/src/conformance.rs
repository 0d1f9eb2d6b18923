//! One conformance run, shared by every provider's test: the whole scenario
//! suite against a signer already started for `listener`, then the checks of
//! the signer afterwards (key, durable state, log). Each provider's test
//! only sets its signer up and adds what is its own.

use crate::scenario::{run_all, SignerAfterSuite, SuiteConfig, SuiteReport};
use crate::NodeListener;

/// The `max_height` every conformance run configures (and the suite
/// checks the signer refuses above).
pub const CONFORMANCE_MAX_HEIGHT: i64 = 1_000_000;

/// What the run reads from the signer under test.
pub struct SignerUnderTest<'a> {
    /// The consensus public key it was set up with (not from the wire).
    pub pubkey: [u8; 32],
    /// The height of its durable state, read after the suite.
    pub state_height: &'a dyn Fn() -> u64,
    /// The log the checks read.
    pub log: &'a dyn Fn() -> String,
    /// More text for failure messages (e.g. an enclave's own log).
    pub diagnostics: &'a dyn Fn() -> String,
}

impl std::fmt::Debug for SignerUnderTest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerUnderTest")
            .field("pubkey", &hex::encode(self.pubkey))
            .finish_non_exhaustive()
    }
}

/// Runs the suite for chain `chain` and panics, with the signer's log,
/// when it aborts or the signer fails a check; returns the report and the
/// log for the provider's own assertions.
// A test's assertion: failing the calling test is this function's job.
#[allow(clippy::panic)]
pub fn run_conformance(
    listener: &NodeListener,
    chain: &str,
    tcp: bool,
    signer: &SignerUnderTest<'_>,
) -> (SuiteReport, String) {
    let mut cfg = SuiteConfig::new(chain);
    cfg.max_height = Some(CONFORMANCE_MAX_HEIGHT);
    cfg.normal_heights = 20;
    let dialect = listener.dialect();
    let report = match run_all(listener, &cfg) {
        Ok(report) => report,
        Err(e) => panic!(
            "{dialect} tcp={tcp}: suite aborted: {e}\nsigner log:\n{}\n{}",
            (signer.log)(),
            (signer.diagnostics)()
        ),
    };
    let log = (signer.log)();
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

/// No extra diagnostics.
pub fn no_diagnostics() -> String {
    String::new()
}

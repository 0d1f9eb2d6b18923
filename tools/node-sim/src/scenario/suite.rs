//! The whole suite: every scenario that applies to a dialect, on fresh
//! heights, re-accepting the signer whenever a scenario cost the connection.

use std::time::Duration;

use crate::conn::{NodeListener, SignerConn, MAX_VOTE_EXTENSION_SIZE};
use crate::dialect::Dialect;
use crate::error::SimError;

use super::malformed_input::{invalid_request, malformed_frame, InvalidRequest, MalformedFrame};
use super::normal_operation::normal_heights;
use super::report::{Case, Expect, Outcome, Report};
use super::scripted::Scripted;

/// Settings of [`run_all`].
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    pub chain_id: String,
    /// First height used; everything signed is at or above it.
    pub start_height: i64,
    /// Heights signed by the normal-operation scenario.
    pub normal_heights: i64,
    /// How long to wait for the signer to (re)connect.
    pub accept_timeout: Duration,
    /// How long to wait for the signer's reaction to malformed input.
    pub reaction_wait: Duration,
    /// The signer's `max_height`, if configured: adds the code-3 scenario.
    pub max_height: Option<i64>,
    /// Extension size of the large-extension scenario.
    pub large_extension_len: usize,
}

impl SuiteConfig {
    /// Defaults: start at height 1, 5 normal heights, 30 s to (re)connect,
    /// 2 s reaction wait, 1 MiB extension.
    pub fn new(chain_id: &str) -> Self {
        SuiteConfig {
            chain_id: chain_id.to_owned(),
            start_height: 1,
            normal_heights: 5,
            accept_timeout: Duration::from_secs(30),
            reaction_wait: Duration::from_secs(2),
            max_height: None,
            large_extension_len: MAX_VOTE_EXTENSION_SIZE,
        }
    }
}

/// The result of [`run_all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteReport {
    pub dialect: Dialect,
    pub pubkey: [u8; 32],
    pub reports: Vec<Report>,
    /// How many times the signer had to reconnect.
    pub reconnects: usize,
    /// The next unused height.
    pub next_height: i64,
}

impl SuiteReport {
    /// Whether every scenario passed.
    pub fn passed(&self) -> bool {
        self.reports.iter().all(Report::passed)
    }

    /// One line per failed case, `scenario: case expected …, got …`, for a
    /// test's failure message.
    pub fn failure_lines(&self) -> Vec<String> {
        self.reports
            .iter()
            .flat_map(|r| {
                r.failures().into_iter().map(move |case| {
                    format!(
                        "{}: {} expected {}, got {}",
                        r.scenario, case.name, case.expect, case.outcome
                    )
                })
            })
            .collect()
    }

    /// The acceptance checks every provider's conformance run makes after
    /// [`run_all`], given what the test sees of the signer; returns one line
    /// per broken check (empty: all hold):
    /// * every case passed;
    /// * the key the signer used over the wire is its configured key;
    /// * malformed frames cost at least one connection (the signer dropped
    ///   a stream it could not parse, then reconnected and kept serving);
    /// * its durable state followed the signing: it is at least at the
    ///   height of the suite's last request, the recovery signing at
    ///   `next_height - 1` (persisted before that signature left);
    /// * nothing in its log panicked;
    /// * over TCP, it checked the node's pinned peer id.
    pub fn check_signer(&self, signer: &SignerAfterSuite<'_>) -> Vec<String> {
        let mut problems = self.failure_lines();
        if self.pubkey != signer.pubkey {
            problems.push(format!(
                "the key used over the wire ({}) is not the signer's key ({})",
                hex::encode(self.pubkey),
                hex::encode(signer.pubkey)
            ));
        }
        if self.reconnects == 0 {
            problems.push("malformed frames cost no connection".to_owned());
        }
        let signed_up_to = self.next_height.saturating_sub(1);
        if i64::try_from(signer.state_height).unwrap_or(i64::MAX) < signed_up_to {
            problems.push(format!(
                "the durable state is at height {}, behind the signing (height {signed_up_to})",
                signer.state_height
            ));
        }
        if signer.log.contains("panicked") {
            problems.push("the signer's log shows a panic".to_owned());
        }
        if signer.tcp && !signer.log.contains("node peer id verified") {
            problems.push("the signer did not verify the node's pinned peer id".to_owned());
        }
        problems
    }
}

/// What a conformance test sees of its signer after [`run_all`], for
/// [`SuiteReport::check_signer`].
#[derive(Clone, Copy, Debug)]
pub struct SignerAfterSuite<'a> {
    /// The consensus public key the signer was set up with (from its key
    /// file, `pubkey` command or init output — not from the wire).
    pub pubkey: [u8; 32],
    /// The height of its durable state.
    pub state_height: u64,
    /// Its log.
    pub log: &'a str,
    /// Whether it connected over TCP (SecretConnection with a pinned peer id).
    pub tcp: bool,
}

/// Defines one `#[test]` per dialect and transport — `v0_34_tcp`,
/// `v0_34_unix`, … `v1_unix` — each calling `$run(dialect, tcp)` with the
/// dialect's name as the signer's config spells it (`"v0.34"`, …) and
/// whether to connect over TCP (else a Unix socket). Every provider's
/// conformance suite covers the same matrix this way.
#[macro_export]
macro_rules! conformance_matrix {
    ($run:path) => {
        $crate::conformance_matrix!(@each $run;
            v0_34_tcp "v0.34" true, v0_34_unix "v0.34" false,
            v0_37_tcp "v0.37" true, v0_37_unix "v0.37" false,
            v0_38_tcp "v0.38" true, v0_38_unix "v0.38" false,
            v1_tcp "v1" true, v1_unix "v1" false);
    };
    (@each $run:path; $($name:ident $dialect:literal $tcp:literal),*) => {$(
        #[test]
        fn $name() {
            $run($dialect, $tcp);
        }
    )*};
}

/// The suite in progress: the connection (re-accepted after a scenario cost
/// it), the next fresh height and the reports so far.
struct Suite<'l> {
    listener: &'l NodeListener,
    cfg: &'l SuiteConfig,
    conn: Option<SignerConn>,
    reconnects: usize,
    height: i64,
    reports: Vec<Report>,
}

impl Suite<'_> {
    fn conn(&mut self) -> Result<&mut SignerConn, SimError> {
        if self.conn.is_none() {
            let mut conn = self.listener.accept(self.cfg.accept_timeout)?;
            conn.ping()?;
            self.reconnects += 1;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or(SimError::Unsupported("no connection".into()))
    }

    /// Drops the connection if the last outcome lost it or a ping fails.
    fn settle(&mut self, lost: bool) {
        let healthy = !lost && self.conn.as_mut().is_some_and(|c| c.ping().is_ok());
        if !healthy {
            if let Some(c) = self.conn.take() {
                c.close();
            }
        }
    }

    /// Keeps a scenario's report, then settles the connection after it.
    fn keep(&mut self, report: Report) {
        let lost = report.connection_lost();
        self.reports.push(report);
        self.settle(lost);
    }

    fn heights(&mut self, n: i64) -> i64 {
        let h = self.height;
        self.height = self.height.saturating_add(n);
        h
    }
}

/// Accepts a signer on `listener` and runs every scenario that applies to
/// the listener's dialect, re-accepting whenever a scenario cost the
/// connection. Fails only if the simulator cannot go on (the signer does not
/// (re)connect, or refuses its public key).
pub fn run_all(listener: &NodeListener, cfg: &SuiteConfig) -> Result<SuiteReport, SimError> {
    let dialect = listener.dialect();
    let mut suite = Suite {
        listener,
        cfg,
        conn: None,
        reconnects: 0,
        height: cfg.start_height.max(2),
        reports: Vec::new(),
    };
    let chain = cfg.chain_id.as_str();
    let pubkey = suite.conn()?.pubkey(chain)?.map_err(SimError::Remote)?;
    suite.reconnects = 0;

    // Normal operation.
    let count = cfg.normal_heights.max(1);
    let start = suite.heights(count);
    let signed = normal_heights(suite.conn()?, chain, start, count, &pubkey, dialect);
    let name = format!("{count} heights from {start}");
    let case = Case::new(name, Expect::Ok, Outcome::of(&signed));
    suite.keep(Report::single("normal heights", case));

    let scripted = [
        Scripted::Replays,
        Scripted::Regressions,
        Scripted::Conflicts,
        Scripted::WrongChainId,
        Scripted::ExtensionRules,
        Scripted::SignBytes,
        Scripted::LargeExtension {
            len: cfg.large_extension_len,
        },
    ];
    for scenario in scripted.into_iter().filter(|s| s.applies_to(dialect)) {
        let h = suite.heights(10);
        let report = scenario.run(suite.conn()?, chain, h, &pubkey)?;
        suite.keep(report);
    }
    if let Some(max) = cfg.max_height {
        let above = max.saturating_add(1);
        let report = Scripted::AboveMaxHeight.run(suite.conn()?, chain, above, &pubkey)?;
        suite.keep(report);
    }

    let mut invalid = Report::new("invalid requests");
    for kind in InvalidRequest::ALL {
        let h = suite.heights(1);
        let case = invalid_request(suite.conn()?, chain, h, kind)?;
        let lost = case.outcome.lost_connection();
        invalid.cases.push(case);
        suite.settle(lost);
    }
    suite.reports.push(invalid);

    let mut malformed = Report::new("malformed frames");
    for kind in MalformedFrame::ALL {
        let conn = suite.conn()?;
        if kind == MalformedFrame::CorruptCiphertext && conn.remote_identity_key().is_none() {
            continue;
        }
        let case = malformed_frame(conn, kind, cfg.reaction_wait)?;
        // Only a refusal leaves the stream in a known state.
        let lost = !matches!(case.outcome, Outcome::Refused { .. });
        malformed.cases.push(case);
        suite.settle(lost);
    }
    suite.reports.push(malformed);

    // After all that, the signer must still sign; a failed re-accept is the
    // signer's failure here, not the simulator's.
    let h = suite.heights(1);
    let signed = suite
        .conn()
        .and_then(|c| normal_heights(c, chain, h, 1, &pubkey, dialect));
    let name = "signs a new height after all scenarios";
    let case = Case::new(name, Expect::Ok, Outcome::of(&signed));
    suite.reports.push(Report::single("recovery", case));

    Ok(SuiteReport {
        dialect,
        pubkey,
        reports: suite.reports,
        reconnects: suite.reconnects,
        next_height: suite.height,
    })
}

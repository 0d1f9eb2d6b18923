//! What a scenario reports: per case, what was expected of the signer and what
//! it did.

use std::fmt;

use crate::error::SimError;
use crate::spec::RemoteError;

/// What a case requires of the signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A correct answer (verified signature, pong, …).
    Ok,
    /// A `RemoteSignerError` with this code; the connection stays usable.
    Refused(i32),
    /// A `RemoteSignerError` with this code, or a dropped connection.
    RefusedOrDropped(i32),
    /// Any `RemoteSignerError`, or a dropped connection.
    ErrorOrDropped,
    /// A correct answer or a `RemoteSignerError` with this code (a policy
    /// choice of the signer).
    OkOrRefused(i32),
    /// A correct answer or any `RemoteSignerError`.
    OkOrError,
}

/// What the signer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered correctly (signature verified, pong received, …).
    Ok,
    /// Refused with a `RemoteSignerError`.
    Refused { code: i32, description: String },
    /// Closed the connection.
    Dropped,
    /// No answer within the deadline.
    NoAnswer,
    /// Answered, but the answer breaks a protocol rule.
    Violation(String),
}

impl Outcome {
    pub(super) fn refused(e: RemoteError) -> Self {
        Outcome::Refused {
            code: e.code,
            description: e.description,
        }
    }

    /// Maps a simulator error to what the signer did.
    pub fn from_error(e: &SimError) -> Self {
        match e {
            SimError::Closed | SimError::Io { .. } => Outcome::Dropped,
            SimError::Timeout(_) => Outcome::NoAnswer,
            SimError::Remote(r) => Outcome::refused(r.clone()),
            other => Outcome::Violation(other.to_string()),
        }
    }

    /// What the signer did, given the result of a request that expects no
    /// particular answer beyond success (a ping, a run of signatures).
    pub(super) fn of<T>(result: &Result<T, SimError>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::from_error(e),
        }
    }

    /// Whether the connection is gone after this outcome.
    pub fn lost_connection(&self) -> bool {
        matches!(self, Outcome::Dropped | Outcome::NoAnswer)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Refused { code, description } => {
                write!(f, "refused (code {code}: {description})")
            }
            Outcome::Dropped => f.write_str("connection dropped"),
            Outcome::NoAnswer => f.write_str("no answer"),
            Outcome::Violation(why) => write!(f, "violation: {why}"),
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Ok => f.write_str("ok"),
            Expect::Refused(c) => write!(f, "refused with code {c}"),
            Expect::RefusedOrDropped(c) => write!(f, "refused with code {c} or dropped"),
            Expect::ErrorOrDropped => f.write_str("an error response or a dropped connection"),
            Expect::OkOrRefused(c) => write!(f, "ok or refused with code {c}"),
            Expect::OkOrError => f.write_str("ok or an error response"),
        }
    }
}

/// One request (or abuse) and its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub expect: Expect,
    pub outcome: Outcome,
}

impl Case {
    pub(super) fn new(name: impl Into<String>, expect: Expect, outcome: Outcome) -> Self {
        Case {
            name: name.into(),
            expect,
            outcome,
        }
    }

    /// Whether the outcome is what was expected.
    pub fn passed(&self) -> bool {
        match (self.expect, &self.outcome) {
            (Expect::Ok | Expect::OkOrRefused(_) | Expect::OkOrError, Outcome::Ok) => true,
            (
                Expect::Refused(want) | Expect::RefusedOrDropped(want) | Expect::OkOrRefused(want),
                Outcome::Refused { code, .. },
            ) => *code == want,
            (Expect::ErrorOrDropped | Expect::OkOrError, Outcome::Refused { .. }) => true,
            (Expect::RefusedOrDropped(_) | Expect::ErrorOrDropped, Outcome::Dropped) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        write!(f, "{verdict} {}: {}", self.name, self.outcome)?;
        if !self.passed() {
            write!(f, " (expected {})", self.expect)?;
        }
        Ok(())
    }
}

/// The cases of one scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub scenario: String,
    pub cases: Vec<Case>,
}

impl Report {
    pub(super) fn new(scenario: &str) -> Self {
        Report {
            scenario: scenario.to_owned(),
            cases: Vec::new(),
        }
    }

    /// A report of one case.
    pub(super) fn single(scenario: &str, case: Case) -> Self {
        Report {
            scenario: scenario.to_owned(),
            cases: vec![case],
        }
    }

    pub(super) fn push(&mut self, name: impl Into<String>, expect: Expect, outcome: Outcome) {
        self.cases.push(Case::new(name, expect, outcome));
    }

    /// Whether every case passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(Case::passed)
    }

    /// The case named `name`.
    pub fn case(&self, name: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// The cases that failed.
    pub fn failures(&self) -> Vec<&Case> {
        self.cases.iter().filter(|c| !c.passed()).collect()
    }

    /// Whether the last case left the connection dropped or silent.
    pub fn connection_lost(&self) -> bool {
        self.cases
            .last()
            .is_some_and(|c| c.outcome.lost_connection())
    }
}

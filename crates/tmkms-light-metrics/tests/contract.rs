//! The exporter against `deploy/metrics.txt`, the list the alert rules and
//! the dashboard are checked against: the same names, types, labels and
//! help texts, nothing more and nothing less.
// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tmkms_light::observe::{DisconnectReason, Event, Observer, SignedKind};
use tmkms_light_metrics::registry::CONTRACT;
use tmkms_light_metrics::Metrics;

struct Listed {
    kind: String,
    labels: BTreeSet<String>,
    help: String,
}

fn contract() -> BTreeMap<String, Listed> {
    CONTRACT
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            let labels = match fields[2] {
                "-" => BTreeSet::new(),
                list => list.split(',').map(str::to_owned).collect(),
            };
            (
                fields[0].to_owned(),
                Listed {
                    kind: fields[1].to_owned(),
                    labels,
                    help: fields[3].to_owned(),
                },
            )
        })
        .collect()
}

/// An exposition with every family holding at least one series.
fn exposition() -> String {
    let metrics = Metrics::new("softsign");
    let chain = metrics.chain("c");
    chain.expect_node("tcp://127.0.0.1:1");
    for event in [
        Event::Signed {
            kind: SignedKind::Precommit,
            height: 5,
            round: 0,
            extension: true,
            replayed: false,
        },
        Event::Answered {
            latency: Duration::from_micros(200),
        },
        Event::Signed {
            kind: SignedKind::Prevote,
            height: 5,
            round: 0,
            extension: false,
            replayed: true,
        },
        Event::Refused { code: 2 },
        Event::Connected {
            address: "tcp://127.0.0.1:1".into(),
        },
        Event::Disconnected {
            address: "tcp://127.0.0.1:1".into(),
            reason: DisconnectReason::Read,
        },
        Event::StateWritten {
            duration: Duration::from_micros(50),
        },
        Event::StateWriteFailed,
    ] {
        chain.observe(&event);
    }
    metrics.encode()
}

/// `name{a="x",b="y"} 1` → (name, {a, b}).
fn sample(line: &str) -> (String, BTreeSet<String>) {
    let (series, _) = line.rsplit_once(' ').unwrap();
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), BTreeSet::new());
    };
    let labels = labels
        .trim_end_matches('}')
        .split("\",")
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    (name.to_owned(), labels)
}

#[test]
fn every_exported_series_is_in_the_contract_with_its_labels() {
    let listed = contract();
    let text = exposition();
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, mut labels) = sample(line);
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (listed.get(base)?.kind == "histogram").then(|| base.to_owned())
            })
            .unwrap_or(name.clone());
        labels.remove("le");
        let entry = listed
            .get(&base)
            .unwrap_or_else(|| panic!("{base} is exported but not in deploy/metrics.txt"));
        assert_eq!(labels, entry.labels, "labels of {line}");
        seen.insert(base);
    }
    let missing: Vec<_> = listed.keys().filter(|n| !seen.contains(*n)).collect();
    assert!(missing.is_empty(), "listed but not exported: {missing:?}");
}

#[test]
fn types_and_help_texts_are_the_contracts() {
    let text = exposition();
    for (name, entry) in contract() {
        let family = match entry.kind.as_str() {
            "counter" => name.strip_suffix("_total").unwrap().to_owned(),
            _ => name.clone(),
        };
        // build_info is a gauge named with its suffix.
        let type_line = format!("# TYPE {family} {}", entry.kind);
        assert!(text.contains(&type_line), "missing {type_line:?}");
        // The encoder ends every help text with a full stop.
        let help = entry.help.strip_suffix('.').unwrap_or(&entry.help);
        let help_line = format!("# HELP {family} {help}.");
        assert!(text.contains(&help_line), "missing {help_line:?}");
    }
}

#[test]
fn a_replay_is_counted_as_a_replay_not_as_a_new_signature() {
    let text = exposition();
    assert!(text.contains("tmkms_light_signed_total{chain_id=\"c\",type=\"prevote\"} 0"));
    assert!(text.contains("tmkms_light_signed_total{chain_id=\"c\",type=\"precommit\"} 1"));
    assert!(text.contains("tmkms_light_signed_total{chain_id=\"c\",type=\"extension\"} 1"));
    assert!(text.contains("tmkms_light_replayed_total{chain_id=\"c\"} 1"));
    assert!(text.contains("tmkms_light_sign_duration_seconds_bucket{le=\"0.05\",chain_id=\"c\"}"));
}

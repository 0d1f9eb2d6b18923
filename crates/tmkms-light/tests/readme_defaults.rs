//! The README's configuration table states the defaults the code applies:
//! every row's default is compared with what a file that leaves the field
//! out gets, and every field the config reads has a row.

// All of this crate is test code, its helpers too: clippy.toml's
// allow-*-in-tests settings cover them.
#![cfg(test)]

use std::collections::BTreeMap;
use std::path::Path;

use tmkms_light::config::Config;

const README: &str = include_str!("../../../README.md");

/// `field → default` of the table under "Configuration reference".
fn documented_defaults() -> BTreeMap<String, String> {
    let section = README
        .split("## Configuration reference")
        .nth(1)
        .expect("README has a Configuration reference section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let field = cells[1].trim_matches('`').to_owned();
            let default = cells[2].trim_matches('`').to_owned();
            (field, default)
        })
        .collect()
}

/// What a file with only the required fields gets, as the table writes it.
fn applied_defaults() -> BTreeMap<&'static str, String> {
    let text = "chain_id = \"c\"\nconsensus_key_path = \"k\"\nstate_file_path = \"s\"\n\
                [[validator]]\naddress = \"unix:///n.sock\"\n";
    let c = Config::from_toml_str(text, Path::new("/etc/tmkms/tmkms.toml")).unwrap();
    let v = &c.validator[0];
    let none = |present: bool, word: &str| if present { "set" } else { word }.to_owned();
    let with_ha = format!(
        "{text}[ha]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nsigner_id = \"a\"\n"
    );
    let ha = Config::from_toml_str(&with_ha, Path::new("/etc/tmkms/tmkms.toml"))
        .unwrap()
        .ha
        .unwrap();
    BTreeMap::from([
        ("[ha]", none(c.ha.is_some(), "off")),
        ("ha.key_prefix", ha.key_prefix.clone()),
        ("ha.timeout_ms", ha.timeout.as_millis().to_string()),
        ("max_height", none(c.max_height.is_some(), "none")),
        ("max_frame_bytes", c.max_frame_bytes.to_string()),
        (
            "danger_allow_sign_bytes",
            c.danger_allow_sign_bytes.to_string(),
        ),
        ("metrics_listen", none(c.metrics_listen.is_some(), "off")),
        ("log_format", c.log_format.name().to_owned()),
        (
            "busy_poll_us",
            if c.busy_poll.is_zero() {
                "0 (off)".to_owned()
            } else {
                c.busy_poll.as_micros().to_string()
            },
        ),
        ("validator.protocol_version", v.protocol_version.to_string()),
        ("validator.timeout_secs", v.timeout_secs.to_string()),
        (
            "validator.reconnect_max_backoff_secs",
            v.reconnect_max_backoff_secs.to_string(),
        ),
    ])
}

/// Rows whose default column says the field has none.
const REQUIRED: &[&str] = &[
    "chain_id",
    "consensus_key_path",
    "id_key_path",
    "state_file_path",
    "[[validator]]",
    "validator.address",
    "ha.backend",
    "ha.endpoints",
    "ha.ca_file",
    "ha.cert_file",
    "ha.key_file",
    "ha.signer_id",
];

#[test]
fn every_documented_default_is_the_one_the_code_applies() {
    let documented = documented_defaults();
    let applied = applied_defaults();
    let mut wrong = Vec::new();
    for (field, default) in &documented {
        if REQUIRED.contains(&field.as_str()) {
            continue;
        }
        match applied.get(field.as_str()) {
            Some(actual) if actual == default => {}
            Some(actual) => wrong.push(format!(
                "{field}: README says {default}, the code applies {actual}"
            )),
            None => wrong.push(format!(
                "{field}: documented but not checked here; add it to applied_defaults()"
            )),
        }
    }
    for field in applied.keys() {
        if !documented.contains_key(*field) {
            wrong.push(format!("{field}: has a default but no README row"));
        }
    }
    for field in REQUIRED {
        if !documented.contains_key(*field) {
            wrong.push(format!("{field}: no README row"));
        }
    }
    assert!(
        wrong.is_empty(),
        "README configuration table:\n{}",
        wrong.join("\n")
    );
}

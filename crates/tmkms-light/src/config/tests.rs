use std::path::Path;

use super::*;

const CONFIG_PATH: &str = "/etc/tmkms/tmkms.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, Path::new(CONFIG_PATH))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const GOOD: &str = r#"
chain_id = "cosmoshub-4"
consensus_key_path = "/secrets/consensus.key"
id_key_path = "secrets/id.key"
state_file_path = "state/consensus.state"
max_height = 1000
max_frame_bytes = 65536
danger_allow_sign_bytes = true

[[validator]]
address = "tcp://0123456789abcdef0123456789ABCDEF01234567@10.0.0.1:26658"
protocol_version = "v1"
timeout_secs = 10
reconnect_max_backoff_secs = 30

[[validator]]
address = "unix:///run/node.sock"
"#;

/// The minimal valid file with one line replaced or added.
fn minimal_with(extra_top: &str, validator: &str) -> String {
    format!(
        "chain_id = \"test-chain\"\nconsensus_key_path = \"c.key\"\nid_key_path = \"id.key\"\nstate_file_path = \"s.state\"\n{extra_top}\n[[validator]]\n{validator}\n"
    )
}

#[test]
fn parses_a_full_config() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.chain_id.as_str(), "cosmoshub-4");
    assert_eq!(
        c.consensus_key_path,
        PathBuf::from("/secrets/consensus.key")
    );
    assert_eq!(
        c.id_key_path,
        Some(PathBuf::from("/etc/tmkms/secrets/id.key"))
    );
    assert_eq!(
        c.state_file_path,
        PathBuf::from("/etc/tmkms/state/consensus.state")
    );
    assert_eq!(c.max_height, Some(Height::from(1000u32)));
    assert_eq!(c.max_frame_bytes, 65536);
    assert!(c.danger_allow_sign_bytes);
    assert!(c.uses_tcp());
    assert_eq!(c.validator.len(), 2);
    let v = &c.validator[0];
    let mut id = [0u8; 20];
    hex::decode_to_slice("0123456789abcdef0123456789abcdef01234567", &mut id).unwrap();
    assert_eq!(
        v.address,
        Address::Tcp {
            peer_id: Some(id),
            host: "10.0.0.1".into(),
            port: 26658
        }
    );
    assert_eq!(v.protocol_version, Dialect::V1);
    assert_eq!(v.timeout(), Duration::from_secs(10));
    assert_eq!(v.reconnect_max_backoff(), Duration::from_secs(30));
    let u = &c.validator[1];
    assert_eq!(
        u.address,
        Address::Unix {
            path: "/run/node.sock".into()
        }
    );
    assert_eq!(u.protocol_version, Dialect::V0_38);
    assert_eq!(u.timeout_secs, DEFAULT_TIMEOUT_SECS);
    assert_eq!(
        u.reconnect_max_backoff_secs,
        DEFAULT_RECONNECT_MAX_BACKOFF_SECS
    );
}

#[test]
fn applies_defaults() {
    let c = parse(&minimal_with("", "address = \"tcp://node:26658\"")).unwrap();
    assert_eq!(c.max_height, None);
    assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
    assert_eq!(c.max_frame_bytes, 1_114_112);
    assert!(!c.danger_allow_sign_bytes);
    assert_eq!(c.validator[0].protocol_version, Dialect::V0_38);
    assert_eq!(c.validator[0].timeout_secs, 15);
    assert_eq!(c.validator[0].reconnect_max_backoff_secs, 1);
}

#[test]
fn resolves_relative_paths_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("conf");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("tmkms.toml");
    std::fs::write(&path, minimal_with("", "address = \"unix:///x.sock\"")).unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.consensus_key_path, sub.join("c.key"));
    assert_eq!(c.id_key_path, Some(sub.join("id.key")));
    assert_eq!(c.state_file_path, sub.join("s.state"));
    assert!(c.consensus_key_path.is_absolute());

    // A relative config path still yields absolute paths.
    let c = Config::from_toml_str(
        &minimal_with("", "address = \"unix:///x.sock\""),
        Path::new("tmkms.toml"),
    )
    .unwrap();
    assert!(c.state_file_path.is_absolute());
    assert_eq!(
        c.state_file_path,
        std::env::current_dir().unwrap().join("s.state")
    );
}

#[test]
fn id_key_is_optional_for_unix_only() {
    let text = "chain_id = \"c\"\nconsensus_key_path = \"c.key\"\nstate_file_path = \"s\"\n[[validator]]\naddress = \"unix:///run/n.sock\"\n";
    assert_eq!(parse(text).unwrap().id_key_path, None);
    let text = text.replace("unix:///run/n.sock", "tcp://127.0.0.1:26658");
    let e = err(&text);
    assert!(e.contains("field \"id_key_path\""), "{e}");
    assert!(e.contains("validator[0] uses tcp://"), "{e}");
    assert!(e.contains("id_key_path = \"secrets/id.key\""), "{e}");
}

#[test]
fn reports_address_errors_with_field_location_and_fix() {
    let cases = [
        (
            "tcp://127.0.0.1",
            "has no port; write e.g. \"tcp://127.0.0.1:26658\"",
        ),
        ("tcp://127.0.0.1:", "has no port"),
        ("tcp://127.0.0.1:0", "write a port from 1 to 65535"),
        ("tcp://127.0.0.1:65536", "write a port from 1 to 65535"),
        ("tcp://127.0.0.1:+80", "write a port from 1 to 65535"),
        ("tcp://:26658", "has no host"),
        ("127.0.0.1:26658", "write \"tcp://127.0.0.1:26658\""),
        ("http://127.0.0.1:26658", "unsupported scheme \"http://\""),
        ("tcp://abc@127.0.0.1:26658", "is not 40 hex characters"),
        (
            "tcp://0123456789abcdef0123456789abcdef0123456z@h:1",
            "is not 40 hex characters",
        ),
        ("tcp://::1:26658", "in brackets"),
        ("tcp://h:26658/path", "nothing after it"),
        (
            "unix://relative.sock",
            "must be absolute; write e.g. \"unix:///",
        ),
    ];
    for (address, expected) in cases {
        let text = minimal_with("", &format!("address = \"{address}\""));
        let e = err(&text);
        assert!(
            e.starts_with("/etc/tmkms/tmkms.toml:7:11: field \"validator[0].address\": "),
            "{e}"
        );
        assert!(e.contains(expected), "{address}: {e}");
    }
    // The message of the design brief's example, verbatim after the location.
    let e = err(&minimal_with("", "address = \"tcp://127.0.0.1\""));
    assert!(e.ends_with(
        "field \"validator[0].address\": \"tcp://127.0.0.1\" has no port; write e.g. \"tcp://127.0.0.1:26658\""
    ));
}

#[test]
fn reports_value_errors_with_field_and_fix() {
    let cases: [(&str, &str, &str, &str); 10] = [
        (
            "max_height = 0",
            "address = \"unix:///a\"",
            "\"max_height\"",
            "leave the field out",
        ),
        (
            "max_height = -5",
            "address = \"unix:///a\"",
            "\"max_height\"",
            "at least 1",
        ),
        (
            "max_frame_bytes = 100",
            "address = \"unix:///a\"",
            "\"max_frame_bytes\"",
            "max_frame_bytes = 1114112",
        ),
        (
            "max_frame_bytes = 9000000",
            "address = \"unix:///a\"",
            "\"max_frame_bytes\"",
            "16384..=8388608",
        ),
        (
            "",
            "address = \"unix:///a\"\ntimeout_secs = 3",
            "\"validator[0].timeout_secs\"",
            "pings about every 3.3 s",
        ),
        (
            "",
            "address = \"unix:///a\"\ntimeout_secs = -1",
            "\"validator[0].timeout_secs\"",
            "timeout_secs = 15",
        ),
        (
            "",
            "address = \"unix:///a\"\nreconnect_max_backoff_secs = 0",
            "\"validator[0].reconnect_max_backoff_secs\"",
            "at least 1",
        ),
        (
            "",
            "address = \"unix:///a\"\nprotocol_version = \"v0.33\"",
            "\"validator[0].protocol_version\"",
            "protocol_version = \"v0.38\"",
        ),
        (
            "",
            "protocol_version = \"v1\"",
            "\"validator[0].address\"",
            "is missing; write e.g. address = \"tcp://",
        ),
        (
            "",
            "address = \"unix:///a\"\n[[validator]]\naddress = \"unix:///a\"",
            "\"validator[1].address\"",
            "already the address of validator[0]",
        ),
    ];
    for (top, validator, field, fix) in cases {
        let e = err(&minimal_with(top, validator));
        assert!(
            e.contains(&format!("field {field}")),
            "{top} {validator}: {e}"
        );
        assert!(e.contains(fix), "{top} {validator}: {e}");
        assert!(e.starts_with(CONFIG_PATH), "{e}");
    }
}

#[test]
fn reports_missing_and_invalid_top_level_fields() {
    let e = err("consensus_key_path = \"c\"\nstate_file_path = \"s\"\n[[validator]]\naddress = \"unix:///a\"");
    assert!(
        e.contains("field \"chain_id\": is missing; write e.g. chain_id = \"cosmoshub-4\""),
        "{e}"
    );

    let e = err(&minimal_with("", "address = \"unix:///a\"").replace("test-chain", "bad chain"));
    assert!(e.contains(":1:12: field \"chain_id\""), "{e}");
    assert!(
        e.contains("printable ASCII") && e.contains("chain_id = \"cosmoshub-4\""),
        "{e}"
    );

    let e = err(&minimal_with("", "address = \"unix:///a\"").replace("\"c.key\"", "\"~/c.key\""));
    assert!(
        e.contains("field \"consensus_key_path\"") && e.contains("not expanded"),
        "{e}"
    );

    let e = err(&minimal_with("", "address = \"unix:///a\"").replace("\"s.state\"", "\"\""));
    assert!(
        e.contains("field \"state_file_path\": is empty; write e.g. state_file_path = "),
        "{e}"
    );

    let e = err("chain_id = \"c\"\nconsensus_key_path = \"c\"\nid_key_path = \"i\"\nstate_file_path = \"s\"\n");
    assert!(
        e.contains("field \"validator\": no [[validator]] table"),
        "{e}"
    );
    assert!(e.contains("address = \"tcp://127.0.0.1:26658\""), "{e}");
}

#[test]
fn reports_unknown_fields_with_the_valid_ones() {
    let e = err(&minimal_with("max_heigth = 5", "address = \"unix:///a\""));
    assert!(e.contains("unknown field `max_heigth`"), "{e}");
    assert!(
        e.contains("`max_height`") && e.contains("`state_file_path`"),
        "{e}"
    );
    assert!(e.contains("did you mean `max_height`?"), "{e}");
    assert!(e.contains("line 5"), "{e}");

    let e = err(&minimal_with("", "address = \"unix:///a\"\ntimeout = 5"));
    assert!(e.contains("unknown field `timeout`"), "{e}");
    assert!(e.contains("did you mean `timeout_secs`?"), "{e}");
    assert!(e.contains("`reconnect_max_backoff_secs`"), "{e}");
}

#[test]
fn keeps_toml_syntax_positions_and_explains_single_brackets() {
    let e = err("chain_id = \"c\"\nconsensus_key_path = \n");
    assert!(e.starts_with(CONFIG_PATH), "{e}");
    assert!(e.contains("line 2"), "{e}");

    let e = err("chain_id = \"c\"\nconsensus_key_path = \"c\"\nid_key_path = \"i\"\nstate_file_path = \"s\"\n[validator]\naddress = \"unix:///a\"\n");
    assert!(e.contains("[[validator]]"), "{e}");

    let e = err(&minimal_with(
        "max_height = \"100\"",
        "address = \"unix:///a\"",
    ));
    assert!(e.contains("line 5"), "{e}");
    assert!(e.contains("whole number, without quotes"), "{e}");
}

#[test]
fn addresses_display_and_parse_back() {
    for text in [
        "tcp://127.0.0.1:26658",
        "tcp://node.example.com:1",
        "tcp://[::1]:26658",
        "tcp://0123456789abcdef0123456789abcdef01234567@[fe80::1]:65535",
        "unix:///run/tmkms/validator.sock",
    ] {
        let address: Address = text.parse().unwrap();
        assert_eq!(address.to_string(), text);
        assert_eq!(address.to_string().parse::<Address>().unwrap(), address);
    }
    let Address::Tcp { host, .. } = "tcp://[::1]:1".parse().unwrap() else {
        panic!("not tcp")
    };
    assert_eq!(host, "::1");
    // Node ids print in lowercase whatever case they were written in.
    let a: Address = "tcp://0123456789ABCDEF0123456789ABCDEF01234567@h:1"
        .parse()
        .unwrap();
    assert_eq!(
        a.to_string(),
        "tcp://0123456789abcdef0123456789abcdef01234567@h:1"
    );
}

fn template_params() -> TemplateParams {
    TemplateParams::new(
        ChainId::try_from("crypto-org-chain-mainnet-1").unwrap(),
        "tcp://127.0.0.1:26658".parse().unwrap(),
        Dialect::V0_34,
    )
}

#[test]
fn rendered_template_parses_back_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tmkms.toml");
    for address in ["tcp://127.0.0.1:26658", "unix:///run/tmkms/v.sock"] {
        let mut params = template_params();
        params.address = address.parse().unwrap();
        let text = render_template(&params);
        std::fs::write(&path, &text).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.chain_id, params.chain_id);
        assert_eq!(
            c.consensus_key_path,
            dir.path().join(DEFAULT_CONSENSUS_KEY_PATH)
        );
        assert_eq!(c.id_key_path, Some(dir.path().join(DEFAULT_ID_KEY_PATH)));
        assert_eq!(c.state_file_path, dir.path().join(DEFAULT_STATE_FILE_PATH));
        assert_eq!(c.max_height, None);
        assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
        assert!(!c.danger_allow_sign_bytes);
        assert_eq!(
            c.validator,
            vec![ValidatorConfig {
                address: params.address.clone(),
                protocol_version: Dialect::V0_34,
                timeout_secs: DEFAULT_TIMEOUT_SECS,
                reconnect_max_backoff_secs: DEFAULT_RECONNECT_MAX_BACKOFF_SECS,
            }]
        );
    }
}

#[test]
fn template_escapes_values_and_keeps_absolute_paths() {
    let mut params = template_params();
    params.consensus_key_path = PathBuf::from("/keys/with \"quote\" and \\ backslash.key");
    params.address = "unix:///run/my node.sock".parse().unwrap();
    let c = parse(&render_template(&params)).unwrap();
    assert_eq!(c.consensus_key_path, params.consensus_key_path);
    assert_eq!(c.validator[0].address, params.address);
}

#[test]
fn template_documents_every_field_and_its_commented_examples_parse() {
    let text = render_template(&template_params());
    // Every top-level field the core reads (`validator` is a table array)
    // and every field of a validator table.
    let validator_fields = [
        "address",
        "protocol_version",
        "timeout_secs",
        "reconnect_max_backoff_secs",
    ];
    for field in sections::CORE_FIELDS.iter().chain(&validator_fields) {
        let written = match *field {
            "validator" => "[[validator]]".to_owned(),
            "ha" => "[ha]".to_owned(),
            _ => format!("{field} = "),
        };
        assert!(text.contains(&written), "{field} missing");
    }
    assert!(text.contains("PLAINTEXT"));

    // Uncommenting every "# key = value" line and the sentry table still
    // gives a valid config.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") || rest == "[[validator]]" || rest == "[ha]" => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&uncommented).unwrap();
    assert_eq!(c.validator.len(), 2);
    let ha = c.ha.as_ref().unwrap();
    assert_eq!(ha.endpoints.len(), 3);
    assert!(ha.tls.is_some());
    assert_eq!(ha.timeout, Duration::from_millis(ha::DEFAULT_HA_TIMEOUT_MS));
    assert_eq!(c.max_height, Some(Height::from(100_000_000u32)));
    assert_eq!(c.max_frame_bytes, DEFAULT_MAX_FRAME_BYTES);
    assert!(!c.danger_allow_sign_bytes);
    assert!(matches!(
        c.validator[1].address,
        Address::Tcp {
            peer_id: Some(_),
            ..
        }
    ));
}

#[test]
fn hands_accepted_provider_sections_to_the_caller() {
    let text = minimal_with("", "address = \"unix:///a\"\n\n[sgx]\nmode = \"sim\"\n");
    let c = Config::from_toml_str_accepting(
        &text,
        Path::new(CONFIG_PATH),
        AcceptedSections::Only(&["sgx"]),
    )
    .unwrap();
    assert_eq!(
        c.provider_section("sgx").unwrap().get("mode"),
        Some(&toml::Value::String("sim".into()))
    );
    assert!(c.provider_section("nitro").is_none());
    // Without a list, any provider's section is kept for its reader.
    assert!(parse(&text).unwrap().provider_section("sgx").is_some());
}

#[test]
fn rejects_sections_nobody_accepts_naming_them() {
    let only_sgx = |text: &str| {
        Config::from_toml_str_accepting(
            text,
            Path::new(CONFIG_PATH),
            AcceptedSections::Only(&["sgx"]),
        )
        .unwrap_err()
        .to_string()
    };
    let e = only_sgx(&minimal_with(
        "",
        "address = \"unix:///a\"\n\n[sgxx]\nmode = 1\n",
    ));
    assert!(e.contains("unknown field `sgxx`"), "{e}");
    assert!(e.contains("did you mean `sgx`?"), "{e}");
    assert!(e.contains("line 9, column 2"), "{e}");

    let e = only_sgx(&minimal_with(
        "",
        "address = \"unix:///a\"\n\n[nitro]\nx = 1\n",
    ));
    assert!(e.contains("unknown field `nitro`"), "{e}");
    // A provider name used for a value, not a table, is no section.
    let e = err(&minimal_with("sgx = 1", "address = \"unix:///a\""));
    assert!(e.contains("unknown field `sgx`"), "{e}");
}

/// A minimal config over a Unix socket with one more top-level `line`.
fn with_top_level(line: &str) -> Config {
    parse(&minimal_with(line, "address = \"unix:///a\"")).unwrap()
}

/// The error of that config, which must contain every one of `parts`.
fn assert_top_level_error(line: &str, parts: &[&str]) {
    let e = err(&minimal_with(line, "address = \"unix:///a\""));
    for part in parts {
        assert!(e.contains(part), "{part:?} not in {e}");
    }
}

#[test]
fn metrics_are_off_unless_an_address_is_given() {
    assert_eq!(with_top_level("").metrics_listen, None);
    let on = with_top_level("metrics_listen = \"127.0.0.1:9101\"");
    assert_eq!(on.metrics_listen, DEFAULT_METRICS_LISTEN.parse().ok());
    assert_top_level_error(
        "metrics_listen = \"localhost\"",
        &[
            "metrics_listen",
            "\"localhost\" is not an IP address and port",
            "metrics_listen = \"127.0.0.1:9101\"",
        ],
    );
}

#[test]
fn log_format_is_text_json_or_a_clear_error() {
    assert_eq!(with_top_level("").log_format, LogFormat::Text);
    assert_eq!(
        with_top_level("log_format = \"json\"").log_format,
        LogFormat::Json
    );
    assert_top_level_error(
        "log_format = \"xml\"",
        &["\"xml\" is not a log format", "log_format = \"json\""],
    );
}

#[test]
fn busy_poll_is_off_by_default_and_bounded() {
    assert_eq!(with_top_level("").busy_poll, Duration::ZERO);
    assert_eq!(
        with_top_level("busy_poll_us = 300").busy_poll,
        Duration::from_micros(300)
    );
    for bad in ["-1", "10001"] {
        assert_top_level_error(
            &format!("busy_poll_us = {bad}"),
            &[
                "busy_poll_us",
                &format!("{bad} is outside 0..=10000"),
                "busy_poll_us = 300",
            ],
        );
    }
}

fn with_ha(table: &str) -> Result<Config, ConfigError> {
    parse(&format!(
        "{}\n[ha]\n{table}\n",
        minimal_with("", "address = \"unix:///a\"")
    ))
}

const HA_TLS: &str = "backend = \"etcd\"\nendpoints = [\"https://10.0.0.1:2379\", \"https://[fd00::1]:2379\"]\nca_file = \"etcd/ca.pem\"\ncert_file = \"/etc/etcd/c.pem\"\nkey_file = \"etcd/k.pem\"\nsigner_id = \"signer-a\"";

#[test]
fn ha_is_off_by_default_and_reads_tls_endpoints() {
    assert!(with_top_level("").ha.is_none());
    let ha = with_ha(HA_TLS).unwrap().ha.unwrap();
    assert_eq!(ha.endpoints[1].to_string(), "https://[fd00::1]:2379");
    assert_eq!(ha.key_prefix, ha::DEFAULT_HA_KEY_PREFIX);
    assert_eq!(ha.signer_id, "signer-a");
    let tls = ha.tls.unwrap();
    assert_eq!(tls.ca_file, PathBuf::from("/etc/tmkms/etcd/ca.pem"));
    assert_eq!(tls.cert_file, PathBuf::from("/etc/etcd/c.pem"));
}

#[test]
fn ha_accepts_plaintext_on_loopback_only() {
    let table = "backend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nsigner_id = \"a\"\ntimeout_ms = 200";
    let ha = with_ha(table).unwrap().ha.unwrap();
    assert!(ha.tls.is_none() && !ha.endpoints[0].tls);
    assert_eq!(ha.timeout, Duration::from_millis(200));
    let e = with_ha(&table.replace("127.0.0.1", "10.0.0.1"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ha.endpoints[0]") && e.contains("not loopback") && e.contains("https://"),
        "{e}"
    );
}

#[test]
fn ha_errors_name_the_field_and_the_fix() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "backend = \"etcd\"",
            "backend = \"consul\"",
            &[
                "ha.backend",
                "\"consul\" is not a supported backend",
                "backend = \"etcd\"",
            ],
        ),
        ("backend = \"etcd\"\n", "", &["ha.backend", "is missing"]),
        (
            "ca_file = \"etcd/ca.pem\"\n",
            "",
            &["ha.ca_file", "is missing", "CA"],
        ),
        (
            "signer_id = \"signer-a\"",
            "signer_id = \"a b\"",
            &["ha.signer_id", "not a signer id"],
        ),
        (
            "signer_id = \"signer-a\"",
            "signer_id = \"signer-a\"\ntimeout_ms = 5",
            &["ha.timeout_ms", "5 is outside 50..=10000"],
        ),
        (
            "signer_id = \"signer-a\"",
            "signer_id = \"signer-a\"\nkey_prefix = \"tmkms\"",
            &["ha.key_prefix", "starts with '/'"],
        ),
        (
            "signer_id = \"signer-a\"",
            "signer_id = \"signer-a\"\nleader = true",
            &["leader"],
        ),
        (
            "\"https://[fd00::1]:2379\"",
            "\"http://127.0.0.1:2379\"",
            &["ha.endpoints", "mixes https:// and http://"],
        ),
        (
            "https://10.0.0.1:2379",
            "https://10.0.0.1",
            &["ha.endpoints[0]", "has no port"],
        ),
    ];
    for (from, to, expected) in cases {
        let table = HA_TLS.replacen(from, to, 1);
        assert_ne!(table, HA_TLS, "case {from:?} did not apply");
        let e = with_ha(&table).unwrap_err().to_string();
        for part in *expected {
            assert!(e.contains(part), "{from:?} -> {to:?}: {e:?} lacks {part:?}");
        }
    }
}

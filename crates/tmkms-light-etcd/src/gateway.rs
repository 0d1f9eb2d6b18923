//! The JSON of etcd's v3 gateway: requests for a range of one key and a
//! compare-and-swap transaction, and the answers' fields we read.
//!
//! The gateway writes protobuf's JSON mapping: 64-bit integers as strings,
//! bytes as base64, and fields at their default value (`false`, `0`, empty)
//! left out, so a failed transaction has no `succeeded` field at all.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use tmkms_light::ha::{decode_value, Outcome, Reservation, WatermarkError};
use tmkms_light::types::SignState;

/// `POST /v3/kv/range` for `key` (linearizable: `serializable` is false).
pub fn range_request(key: &str) -> Vec<u8> {
    json!({ "key": B64.encode(key) }).to_string().into_bytes()
}

/// `POST /v3/kv/txn`: if `key`'s mod_revision is `expected` (0: it does not
/// exist), put `value`; otherwise read it back in the same transaction.
pub fn txn_request(key: &str, expected: i64, value: &[u8]) -> Vec<u8> {
    let key = B64.encode(key);
    json!({
        "compare": [{
            "target": "MOD",
            "result": "EQUAL",
            "key": key,
            "mod_revision": expected.to_string(),
        }],
        "success": [{ "request_put": { "key": key, "value": B64.encode(value) } }],
        "failure": [{ "request_range": { "key": key } }],
    })
    .to_string()
    .into_bytes()
}

fn invalid(what: &str) -> WatermarkError {
    WatermarkError::Invalid(format!("etcd gateway answer: {what}"))
}

/// An int64 field, written as a string or a number; absent means 0.
fn int(value: &Value, field: &str) -> Result<i64, WatermarkError> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| invalid(&format!("{field} {s:?} is not an integer"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| invalid(&format!("{field} {n} is not an int64"))),
        Some(_) => Err(invalid(&format!("{field} is not an integer"))),
    }
}

/// The reservation in a `/v3/kv/range` answer (or the range a failed
/// transaction's failure branch read): its `kvs`, absent when the key was
/// never written.
pub fn reservation_of_range(range: &Value, key: &str) -> Result<Reservation, WatermarkError> {
    let kvs = match range.get("kvs") {
        None | Some(Value::Null) => return Ok(Reservation::default()),
        Some(Value::Array(kvs)) => kvs,
        Some(_) => return Err(invalid("kvs is not a list")),
    };
    let Some(kv) = kvs.first() else {
        return Ok(Reservation::default());
    };
    if kvs.len() > 1 {
        return Err(invalid("more than one key for a single-key range"));
    }
    let returned_key = kv
        .get("key")
        .and_then(Value::as_str)
        .and_then(|k| B64.decode(k).ok())
        .ok_or_else(|| invalid("a key-value without a valid key"))?;
    if returned_key != key.as_bytes() {
        return Err(invalid("the answer is for another key"));
    }
    let revision = int(kv, "mod_revision")?;
    if revision <= 0 {
        return Err(invalid("a stored key without a mod_revision"));
    }
    let value = match kv.get("value") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(v)) => B64
            .decode(v)
            .map_err(|_| invalid("the value is not base64"))?,
        Some(_) => return Err(invalid("the value is not a string")),
    };
    Ok(Reservation {
        revision,
        state: Some(decode_value(&value, key)?),
    })
}

/// The outcome of a [`txn_request`]: committed at the transaction's
/// revision, or superseded by what the failure branch read.
pub fn outcome_of_txn(
    answer: &Value,
    key: &str,
    next: &SignState,
) -> Result<Outcome, WatermarkError> {
    let succeeded = match answer.get("succeeded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("succeeded is not a boolean")),
    };
    if succeeded {
        let header = answer
            .get("header")
            .ok_or_else(|| invalid("a committed transaction without a header"))?;
        let revision = int(header, "revision")?;
        if revision <= 0 {
            return Err(invalid("a committed transaction without a revision"));
        }
        return Ok(Outcome::Reserved(Reservation {
            revision,
            state: Some(SignState {
                signature: None,
                ..next.clone()
            }),
        }));
    }
    let range = answer
        .get("responses")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("response_range"))
        .ok_or_else(|| invalid("a failed transaction without the read of its failure branch"))?;
    Ok(Outcome::Superseded(reservation_of_range(range, key)?))
}

/// The message of a gateway error body (`{"error": …, "message": …}`), or
/// the start of the body.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("message")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(200).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmkms_light::ha::encode_value;
    use tmkms_light::types::{Height, Position, Round, Step};

    const KEY: &str = "/tmkms-light/c/ab";

    fn state() -> SignState {
        SignState {
            position: Position {
                height: Height::from(7u32),
                round: Round::from(0u16),
                step: Step::Prevote,
            },
            sign_bytes: vec![9, 9],
            signature: None,
        }
    }

    fn kv(revision: &str) -> Value {
        json!({
            "key": B64.encode(KEY),
            "mod_revision": revision,
            "value": B64.encode(encode_value(&state(), "a")),
        })
    }

    #[test]
    fn the_txn_compares_on_the_revision_and_reads_back_on_failure() {
        let request: Value = serde_json::from_slice(&txn_request(KEY, 41, b"v")).unwrap();
        assert_eq!(request["compare"][0]["mod_revision"], "41");
        assert_eq!(request["compare"][0]["target"], "MOD");
        assert_eq!(
            request["success"][0]["request_put"]["value"],
            B64.encode("v")
        );
        assert_eq!(
            request["failure"][0]["request_range"]["key"],
            B64.encode(KEY)
        );
    }

    #[test]
    fn reads_committed_and_superseded_answers() {
        let committed = json!({"header": {"revision": "42"}, "succeeded": true});
        assert!(matches!(
            outcome_of_txn(&committed, KEY, &state()).unwrap(),
            Outcome::Reserved(r) if r.revision == 42
        ));
        let failed = json!({"header": {"revision": "50"}, "responses": [{"response_range": {"kvs": [kv("49")], "count": "1"}}]});
        let Outcome::Superseded(now) = outcome_of_txn(&failed, KEY, &state()).unwrap() else {
            panic!("a failed compare is superseded")
        };
        assert_eq!(now.revision, 49);
        assert_eq!(now.state.unwrap().position, state().position);
        let empty = json!({"header": {"revision": "3"}, "responses": [{"response_range": {}}]});
        assert!(matches!(
            outcome_of_txn(&empty, KEY, &state()).unwrap(),
            Outcome::Superseded(r) if r == Reservation::default()
        ));
    }

    #[test]
    fn refuses_answers_that_do_not_fit() {
        let cases = [
            json!({"succeeded": true}),
            json!({"succeeded": "yes"}),
            json!({"responses": []}),
            json!({"responses": [{"response_range": {"kvs": [kv("0")]}}]}),
            json!({"responses": [{"response_range": {"kvs": [kv("x")]}}]}),
            json!({"responses": [{"response_range": {"kvs": [kv("3"), kv("4")]}}]}),
            json!({"responses": [{"response_range": {"kvs": [{"key": B64.encode("/other"), "mod_revision": "3"}]}}]}),
            json!({"responses": [{"response_range": {"kvs": [{"key": B64.encode(KEY), "mod_revision": "3", "value": B64.encode("junk")}]}}]}),
        ];
        for answer in cases {
            assert!(outcome_of_txn(&answer, KEY, &state()).is_err(), "{answer}");
        }
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(
                br#"{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}"#
            ),
            "etcdserver: no leader"
        );
        assert_eq!(error_message(b"plain"), "plain");
    }
}

"""A minimal AWS KMS JSON-API client for the local KMS emulator (LocalStack).

The Nitro runs need one KMS key per chain; the helper and the enclave do
everything else with KMS themselves. Requests are signed with AWS Signature
Version 4 (standard library only, like the rest of the suite), with the
emulator's test credentials.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request

REGION = "us-east-1"
# The emulator's test credentials (also given to the helper's environment).
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": "test-session",
}


class KmsError(Exception):
    pass


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_headers(endpoint: str, target: str, body: bytes, region: str = REGION,
                  now: datetime.datetime | None = None) -> dict[str, str]:
    """Headers for a SigV4-signed POST of `body` to the KMS JSON API."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    host = urllib.parse.urlsplit(endpoint).netloc
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-security-token": TEST_CREDENTIALS["AWS_SESSION_TOKEN"],
        "x-amz-target": f"TrentService.{target}",
    }
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        "POST", "/", "",
        "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
        signed,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{day}/{region}/kms/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, region, "kms", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={TEST_CREDENTIALS['AWS_ACCESS_KEY_ID']}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    del headers["host"]  # urllib sets it (same value)
    return headers


def call(endpoint: str, target: str, payload: dict, timeout: float = 60.0) -> dict:
    body = json.dumps(payload).encode()
    req = urllib.request.Request(endpoint.rstrip("/") + "/", data=body, method="POST",
                                 headers=sigv4_headers(endpoint, target, body))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise KmsError(f"KMS {target} at {endpoint}: HTTP {e.code}: {e.read()[:500]!r}") from None
    except (OSError, urllib.error.URLError) as e:
        raise KmsError(f"KMS {target} at {endpoint}: {e}; is the emulator running "
                       "(./scripts/localstack.sh start)?") from None


def create_key(endpoint: str, description: str) -> str:
    """A new symmetric encryption key; returns its id."""
    out = call(endpoint, "CreateKey", {
        "Description": description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeySpec": "SYMMETRIC_DEFAULT",
    })
    try:
        return out["KeyMetadata"]["KeyId"]
    except KeyError:
        raise KmsError(f"KMS CreateKey answered without KeyMetadata.KeyId: {out}") from None


def reachable(endpoint: str) -> bool:
    try:
        call(endpoint, "ListKeys", {}, timeout=10.0)
        return True
    except KmsError:
        return False

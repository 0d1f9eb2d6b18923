"""Independent checks of what a real node committed: Ed25519 verification and
CometBFT canonical vote sign bytes, in plain Python (stdlib only).

This deliberately shares nothing with the Rust signer: the signatures come
from the node's RPC, the sign bytes are rebuilt here from the protobuf
definitions, and the curve arithmetic follows RFC 8032 section 5.1.
Speed is irrelevant (a few hundred verifications per run).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# --- Ed25519 (RFC 8032, section 5.1), verification only -------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

# Points are extended homogeneous coordinates (X, Y, Z, T) with x = X/Z,
# y = Y/Z and x*y = T/Z on -x^2 + y^2 = 1 + d x^2 y^2.
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


def _add(p: Point, q: Point) -> Point:
    # Unified addition for a = -1 (also valid for doubling).
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(k: int, p: Point) -> Point:
    acc = IDENTITY
    while k:
        if k & 1:
            acc = _add(acc, p)
        p = _add(p, p)
        k >>= 1
    return acc


def _equal(p: Point, q: Point) -> bool:
    x1, y1, z1, _ = p
    x2, y2, z2, _ = q
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


def _decode_point(s: bytes) -> Point | None:
    if len(s) != 32:
        return None
    n = int.from_bytes(s, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= P:
        return None
    # x^2 = (y^2 - 1) / (d y^2 + 1)
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    vx2 = v * x * x % P
    if vx2 == u:
        pass
    elif vx2 == (-u) % P:
        x = x * SQRT_M1 % P
    else:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


_BASE = _decode_point((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
assert _BASE is not None  # the standard base point always decodes


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` is a valid Ed25519 signature of `message`."""
    if len(signature) != 64:
        return False
    a = _decode_point(public_key)
    r = _decode_point(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    return _equal(_mul(s, _BASE), _add(r, _mul(k, a)))


# --- Protobuf encoding of CometBFT's CanonicalVote --------------------------
#
# From proto/tendermint/types/canonical.proto (v0.34 to v0.38, same fields in
# proto/cometbft/types/v1/canonical.proto of v1):
#   CanonicalVote { SignedMsgType type = 1; sfixed64 height = 2;
#                   sfixed64 round = 3; CanonicalBlockID block_id = 4;
#                   Timestamp timestamp = 5 (non-nullable); string chain_id = 6; }
#   CanonicalBlockID { bytes hash = 1; CanonicalPartSetHeader part_set_header = 2 (non-nullable); }
#   CanonicalPartSetHeader { uint32 total = 1; bytes hash = 2; }
# Sign bytes are the message prefixed by its uvarint length
# (types.VoteSignBytes -> protoio.MarshalDelimited).

PRECOMMIT = 2


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _uvarint(field << 3 | wire_type)


def _varint_field(field: int, value: int) -> bytes:
    if value == 0:
        return b""
    return _key(field, 0) + _uvarint(value & 0xFFFFFFFFFFFFFFFF)


def _sfixed64_field(field: int, value: int) -> bytes:
    if value == 0:
        return b""
    return _key(field, 1) + (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")


def _bytes_field(field: int, value: bytes, always: bool = False) -> bytes:
    if not value and not always:
        return b""
    return _key(field, 2) + _uvarint(len(value)) + value


@dataclass(frozen=True)
class Timestamp:
    seconds: int
    nanos: int

    def encode(self) -> bytes:
        return _varint_field(1, self.seconds) + _varint_field(2, self.nanos)


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")


def parse_rfc3339_utc(text: str) -> Timestamp:
    """Parse CometBFT's RFC 3339 UTC timestamps (nanosecond precision, 'Z')."""
    import calendar

    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"unexpected timestamp format: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    nanos = int(frac.ljust(9, "0")) if frac else 0
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return Timestamp(seconds, nanos)


def canonical_precommit_sign_bytes(
    chain_id: str,
    height: int,
    round_: int,
    block_id: tuple[bytes, int, bytes] | None,
    timestamp: Timestamp,
) -> bytes:
    """Sign bytes of a precommit; `block_id` is (hash, parts total, parts
    hash), or None for a nil vote (CanonicalizeBlockID returns nil)."""
    body = (
        _varint_field(1, PRECOMMIT)
        + _sfixed64_field(2, height)
        + _sfixed64_field(3, round_)
    )
    if block_id is not None:
        block_hash, parts_total, parts_hash = block_id
        psh = _varint_field(1, parts_total) + _bytes_field(2, parts_hash)
        encoded = _bytes_field(1, block_hash) + _bytes_field(2, psh, always=True)
        body += _bytes_field(4, encoded, always=True)
    body += _bytes_field(5, timestamp.encode(), always=True) + _bytes_field(6, chain_id.encode())
    return _uvarint(len(body)) + body

"""Self-test of e2e/verify.py against published vectors.

Run: python3 -m unittest discover -s e2e -p 'test_*.py'
(the e2e driver runs it before starting any node).
"""

import unittest

from verify import (
    Timestamp,
    canonical_precommit_sign_bytes,
    ed25519_verify,
    parse_rfc3339_utc,
)

# Go's zero time.Time, as CometBFT encodes it: 0001-01-01T00:00:00Z.
GO_ZERO_TIME = Timestamp(-62135596800, 0)


class Ed25519(unittest.TestCase):
    # RFC 8032, section 7.1, TEST 1 and TEST 2.
    VECTORS = [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ]

    def test_accepts_rfc8032_vectors(self):
        for pk, msg, sig in self.VECTORS:
            self.assertTrue(ed25519_verify(bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig)))

    def test_rejects_altered_message_signature_or_key(self):
        pk, msg, sig = (bytes.fromhex(x) for x in self.VECTORS[1])
        self.assertFalse(ed25519_verify(pk, b"\x73", sig))
        bad_sig = bytearray(sig)
        bad_sig[10] ^= 1
        self.assertFalse(ed25519_verify(pk, msg, bytes(bad_sig)))
        other_pk = bytes.fromhex(self.VECTORS[0][0])
        self.assertFalse(ed25519_verify(other_pk, msg, sig))
        self.assertFalse(ed25519_verify(pk, msg, sig[:63]))


class CanonicalVote(unittest.TestCase):
    # CometBFT v0.38.x types/vote_test.go, TestVoteSignBytesTestVectors.
    ZERO_TIME_BYTES = bytes([0x2A, 0xB, 0x8, 0x80, 0x92, 0xB8, 0xC3, 0x98, 0xFE, 0xFF, 0xFF, 0xFF, 0x1])

    def test_matches_cometbft_vector_1_precommit(self):
        want = (
            bytes([0x21, 0x8, 0x2, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x19, 1, 0, 0, 0, 0, 0, 0, 0])
            + self.ZERO_TIME_BYTES
        )
        self.assertEqual(canonical_precommit_sign_bytes("", 1, 1, None, GO_ZERO_TIME), want)

    def test_encodes_chain_id_after_timestamp(self):
        got = canonical_precommit_sign_bytes("test_chain_id", 1, 1, None, GO_ZERO_TIME)
        self.assertTrue(got.endswith(bytes([0x32, 0xD]) + b"test_chain_id"))
        self.assertEqual(got[0], len(got) - 1)

    def test_encodes_block_id(self):
        got = canonical_precommit_sign_bytes("c", 2, 0, (b"\xaa" * 32, 1, b"\xbb" * 32), Timestamp(5, 7))
        block_id = bytes([0x22, 0x48, 0x0A, 0x20]) + b"\xaa" * 32 + bytes([0x12, 0x24, 0x08, 0x01, 0x12, 0x20]) + b"\xbb" * 32
        self.assertIn(block_id, got)
        self.assertIn(bytes([0x2A, 0x04, 0x08, 0x05, 0x10, 0x07]), got)

    def test_parses_rfc3339_nanos(self):
        self.assertEqual(parse_rfc3339_utc("2017-12-25T03:00:01.234Z"), Timestamp(1514170801, 234000000))
        self.assertEqual(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Timestamp(0, 0))
        self.assertEqual(parse_rfc3339_utc("2024-02-29T23:59:59.000000001Z"), Timestamp(1709251199, 1))


if __name__ == "__main__":
    unittest.main()

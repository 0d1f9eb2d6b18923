"""Self-test of the pieces the TEE runs add: the validator address the
genesis is rewritten with, and reading the Nitro helper's forwarded log lines.

Run: python3 -m unittest discover -s e2e -p 'test_*.py'
"""

import base64
import unittest

from run import FORWARDED, LOG_EVENT, LOG_FIELD
from signers import SIGNED_AT, validator_address


class ValidatorAddress(unittest.TestCase):
    def test_matches_a_key_file_written_by_cometbft(self):
        # `cometbft init` (v1.0.1) wrote this address next to this public key.
        pubkey = base64.b64decode("IfnXvDf4rEACesF247C9S5qNEQlqBTX72NBjpoqtLrU=")
        self.assertEqual(validator_address(pubkey), "AD9A0B2FC458220416C4767062D11217395C827E")


def parse(line: str):
    m = LOG_EVENT.search(FORWARDED.sub("", line, count=1))
    return (m.group("msg"), dict(LOG_FIELD.findall(m.group("fields")))) if m else None


class SignerLogLines(unittest.TestCase):
    def test_reads_a_forwarded_enclave_line(self):
        line = ("2026-11-25T22:23:32.574869Z  INFO enclave: 2026-11-25T22:23:32.574539Z  INFO "
                "tmkms_light::session: signed at=1/0/precommit extension_signed=true latency_us=639")
        self.assertEqual(parse(line), ("signed", {"at": "1/0/precommit", "extension_signed": "true",
                                                  "latency_us": "639"}))

    def test_reads_a_direct_line(self):
        line = ("2026-11-25T22:23:21.072075Z  INFO tmkms_light::session: signed at=1/0/proposal "
                "latency_us=5837")
        self.assertEqual(parse(line), ("signed", {"at": "1/0/proposal", "latency_us": "5837"}))


class HaSignedLines(unittest.TestCase):
    def test_counts_fresh_signatures_only(self):
        log = "\n".join([
            "2026-12-04T19:15:14.366150Z  INFO signed at=51/0/precommit height=51 extension_signed=true",
            "2026-11-25T22:23:21.072075Z  INFO tmkms_light::session: signed at=52/0/proposal latency_us=5837",
            "2026-12-04T19:15:23.144067Z ERROR refusing to sign last=67/0/precommit refusal=double-sign "
            "protection: request at 55/0/proposal is below the last signed 67/0/precommit",
            "2026-12-04T19:15:23.144067Z  INFO replayed the stored signature at=53/0/prevote",
        ])
        self.assertEqual(SIGNED_AT.findall(log), ["51", "52"])


if __name__ == "__main__":
    unittest.main()

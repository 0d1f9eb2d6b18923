//! AWS KMS client for the Nitro enclave: SigV4, Decrypt with Recipient, CMS envelopes

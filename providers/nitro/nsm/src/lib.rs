//! Nitro Security Module boundary, mock NSM and attestation document verification

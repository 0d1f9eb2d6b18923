//! SGX hardware boundary (EREPORT/EGETKEY), host simulation, sealing and cloud backup

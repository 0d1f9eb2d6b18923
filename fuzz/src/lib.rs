//! What several fuzz targets share: the test doubles they drive the code
//! under test with, the real signer they sign through, and the reading
//! back of what the signer answered. Each target keeps only its own input
//! layout and invariants.

pub mod chunked;
pub mod pipe;
pub mod response;
pub mod signer;

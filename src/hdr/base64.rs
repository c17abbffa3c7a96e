//! The text form of a compressed histogram inside JSON and interval logs:
//! standard base64 (RFC 4648, `=` padding), by the `base64` crate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `bytes` as base64 text.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The bytes of base64 `text`; `None` if it is not base64.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

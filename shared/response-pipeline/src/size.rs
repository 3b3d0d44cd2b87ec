//! Response size monitoring and Lambda's synchronous payload limit.

/// Lambda refuses a synchronous response whose serialised form exceeds this many bytes, and API
/// Gateway turns that into an opaque 502.
pub const LAMBDA_RESPONSE_LIMIT: usize = 6_291_556;

/// Responses above this many uncompressed bytes are logged as a warning: they should paginate.
pub const WARN_BYTES: usize = 1024 * 1024;

/// Room for the status, headers and JSON envelope around the body.
const ENVELOPE_ALLOWANCE: usize = 16 * 1024;

/// The size of `body` inside Lambda's JSON response: base64 for binary bodies (compressed or not
/// text), JSON-string escaping for text.
pub fn lambda_wire_size(body: &[u8], binary: bool) -> usize {
    if binary {
        return body.len().div_ceil(3) * 4;
    }
    // Quotes and backslashes take one extra byte; control characters up to five (\u00XX). A
    // plain counting loop vectorises, which matters on megabyte bodies.
    let doubled = body.iter().filter(|&&b| b == b'"' || b == b'\\').count();
    let control = body.iter().filter(|&&b| b < 0x20).count();
    body.len() + doubled + control * 5
}

/// Whether a body of this wire size fits in a Lambda response with its headers.
pub fn fits_lambda(wire_size: usize, header_bytes: usize) -> bool {
    wire_size + header_bytes + ENVELOPE_ALLOWANCE <= LAMBDA_RESPONSE_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_size_accounts_for_base64_and_escaping() {
        assert_eq!(lambda_wire_size(&[0u8; 3], true), 4);
        assert_eq!(lambda_wire_size(&[0u8; 4], true), 8);
        assert_eq!(lambda_wire_size(br#"{"a":"b"}"#, false), 9 + 4);
        assert!(fits_lambda(1_000_000, 500));
        assert!(!fits_lambda(LAMBDA_RESPONSE_LIMIT, 0));
    }
}

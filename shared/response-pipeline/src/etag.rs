//! Strong entity tags and `If-None-Match`.
//!
//! The tag is a hash of the uncompressed body. Each content coding is a different representation,
//! so a strong validator must differ between them: the coding is appended (`"<hash>-br"`).
//! Matching compares the hash part, so a client that cached the gzip variant and now accepts br
//! still gets a 304 for unchanged content.

use crate::Encoding;

/// The representation-independent part of the tag: 128-bit xxh3 of the body, hex.
pub fn content_hash(body: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(body))
}

/// The strong ETag header value for a body hash sent with `encoding`.
pub fn etag_for(hash: &str, encoding: Encoding) -> String {
    match encoding {
        Encoding::Identity => format!("\"{hash}\""),
        other => format!("\"{hash}-{}\"", other.token()),
    }
}

/// Whether `If-None-Match` matches the current content hash (weak comparison, RFC 9110 §13.1.2,
/// as required for If-None-Match).
pub fn if_none_match_matches(header: &str, hash: &str) -> bool {
    header.split(',').any(|candidate| {
        let candidate = candidate.trim();
        if candidate == "*" {
            return true;
        }
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        let Some(inner) = candidate
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
        else {
            return false;
        };
        let base = inner.split_once('-').map_or(inner, |(b, _)| b);
        base == hash
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_per_coding_but_match_across_them() {
        let h = content_hash(b"{\"a\":1}");
        assert_eq!(h.len(), 32);
        let id = etag_for(&h, Encoding::Identity);
        let br = etag_for(&h, Encoding::Brotli);
        assert_ne!(id, br);
        assert!(if_none_match_matches(&br, &h));
        assert!(if_none_match_matches(&id, &h));
        assert!(if_none_match_matches(&format!("\"other\", W/{br}"), &h));
        assert!(if_none_match_matches("*", &h));
        assert!(!if_none_match_matches(
            &etag_for(&content_hash(b"x"), Encoding::Gzip),
            &h
        ));
        assert!(!if_none_match_matches("garbage", &h));
    }
}

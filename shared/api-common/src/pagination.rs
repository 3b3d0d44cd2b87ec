//! Keyset pagination: opaque cursors carrying the last row's sort key, and the page envelope.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Default page size when the client does not ask for one.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a client may ask for; larger requests are refused rather than silently cut.
pub const MAX_LIMIT: u32 = 200;

/// One page of a listing; `next_cursor` is absent on the last page.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
}

/// Encodes a keyset position as an opaque, URL-safe cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    // Serialising plain key structs cannot fail; an empty cursor would only restart the listing.
    let json = serde_json::to_vec(key).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor produced by [`encode_cursor`]; anything else is a 400 on `cursor`.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ApiError::invalid("cursor", "not a cursor returned by this API"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::invalid("cursor", "not a cursor returned by this API"))
}

/// Validates a requested page size.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(ApiError::invalid("limit", "must be at least 1")),
        Some(n) if n > MAX_LIMIT => Err(ApiError::invalid(
            "limit",
            format!("must be at most {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}

/// Builds a page from rows fetched with `limit + 1`: the extra row only proves there is a next page.
pub fn into_page<T, K: Serialize>(
    mut rows: Vec<T>,
    limit: u32,
    key_of: impl Fn(&T) -> K,
) -> Page<T> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|last| encode_cursor(&key_of(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = encode_cursor(&("2024-01-01T00:00:00Z", 7));
        let back: (String, i32) = decode_cursor(&c).unwrap();
        assert_eq!(back, ("2024-01-01T00:00:00Z".to_owned(), 7));
        assert!(decode_cursor::<(String, i32)>("%%%").is_err());
        assert!(decode_cursor::<(String, i32)>(&encode_cursor(&"x")).is_err());
    }

    #[test]
    fn page_uses_the_extra_row_only_as_a_signal() {
        let page = into_page(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            decode_cursor::<i32>(page.next_cursor.as_deref().unwrap()).unwrap(),
            2
        );
        let last = into_page(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_LIMIT + 1)).is_err());
    }
}

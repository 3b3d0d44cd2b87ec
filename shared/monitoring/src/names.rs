//! Names that become dimension values and Redis hash fields: sanitised and bounded in number.

use std::collections::HashSet;
use std::sync::Mutex;

/// Longest dimension value kept (the spec allows 1024; route templates are far shorter).
pub const MAX_NAME_LEN: usize = 250;
/// Name used for values beyond a cardinality cap.
pub const OTHER: &str = "other";
/// Route of requests that matched no route (404 fallbacks): never the raw path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A dimension value CloudWatch accepts and a Redis field can hold: printable ASCII without `|`
/// (the field separator), at least one non-space character, at most [`MAX_NAME_LEN`] bytes.
pub fn dimension_value(raw: &str) -> String {
    let mut s: String = raw
        .trim()
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '|' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_LEN)
        .collect();
    if s.trim().is_empty() {
        s = "unknown".to_owned();
    }
    s
}

/// The HTTP method as a bounded set: the standard methods, anything else is `OTHER`.
pub fn method_name(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Admits at most `cap` distinct names per process; later newcomers become [`OTHER`], so a caller
/// passing raw keys or paths by mistake cannot create unbounded metrics or hash fields.
#[derive(Debug)]
pub(crate) struct Limiter {
    cap: usize,
    seen: Mutex<HashSet<String>>,
}

impl Limiter {
    pub(crate) fn new(cap: usize) -> Self {
        Limiter {
            cap,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// The sanitised name, or `OTHER` once the cap is reached by other names.
    pub(crate) fn admit(&self, raw: &str) -> String {
        let name = dimension_value(raw);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(&name) {
            return name;
        }
        if seen.len() >= self.cap {
            return OTHER.to_owned();
        }
        seen.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises() {
        assert_eq!(dimension_value(" /users/{id} "), "/users/{id}");
        assert_eq!(dimension_value("a|b\u{e9}\n"), "a_b_");
        assert_eq!(dimension_value("   "), "unknown");
        assert_eq!(dimension_value(&"x".repeat(2000)).len(), MAX_NAME_LEN);
    }

    #[test]
    fn limiter_caps_cardinality() {
        let l = Limiter::new(2);
        assert_eq!(l.admit("a"), "a");
        assert_eq!(l.admit("b"), "b");
        assert_eq!(l.admit("c"), OTHER);
        assert_eq!(l.admit("a"), "a");
    }

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_name(&http::Method::GET), "GET");
        let odd = http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_name(&odd), "OTHER");
    }
}

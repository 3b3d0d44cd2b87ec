//! The one table that decides, per route, how responses may be cached: by browsers and shared
//! caches (`Cache-Control`), and in Redis by the response cache (the guide's TTLs, and the tags
//! that let a write invalidate exactly the entries it affects).

use std::time::Duration;

use http::Method;

use crate::tags;

/// How a route's successful responses may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Caller-specific data: only the caller's own cache, revalidated every time (ETag → 304).
    Private,
    /// Shared catalogue data, the same for every caller who may see it: shared caches keep it for
    /// `s_maxage` seconds and may serve it stale for `stale_while_revalidate` more while refreshing.
    Catalogue {
        /// Seconds a shared cache may serve it without asking.
        s_maxage: u32,
        /// Seconds a shared cache may serve it stale while revalidating in the background.
        stale_while_revalidate: u32,
    },
    /// Mutations and one-off answers (presigned URLs): never stored.
    NoStore,
}

impl RouteClass {
    /// The `Cache-Control` value of a successful response.
    pub fn cache_control(self) -> String {
        match self {
            RouteClass::Private => "private, no-cache".to_owned(),
            RouteClass::Catalogue {
                s_maxage,
                stale_while_revalidate,
            } => format!(
                "public, max-age=0, s-maxage={s_maxage}, stale-while-revalidate={stale_while_revalidate}"
            ),
            RouteClass::NoStore => "no-store".to_owned(),
        }
    }
}

/// The guide's cache configurations ("Cache TTL settings").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheProfile {
    /// userData: 300 s.
    UserData,
    /// cadFileMetadata: 3600 s.
    CadFileMetadata,
    /// searchResults: 600 s.
    SearchResults,
    /// aiModelInfo: 1800 s.
    AiModelInfo,
    /// systemMetrics: 60 s.
    SystemMetrics,
}

impl CacheProfile {
    /// Every profile.
    pub const ALL: [CacheProfile; 5] = [
        CacheProfile::UserData,
        CacheProfile::CadFileMetadata,
        CacheProfile::SearchResults,
        CacheProfile::AiModelInfo,
        CacheProfile::SystemMetrics,
    ];

    /// The guide's name, used for the cache's per-name counters.
    pub fn name(self) -> &'static str {
        match self {
            CacheProfile::UserData => "userData",
            CacheProfile::CadFileMetadata => "cadFileMetadata",
            CacheProfile::SearchResults => "searchResults",
            CacheProfile::AiModelInfo => "aiModelInfo",
            CacheProfile::SystemMetrics => "systemMetrics",
        }
    }

    /// How long an entry is fresh.
    pub fn ttl(self) -> Duration {
        Duration::from_secs(match self {
            CacheProfile::UserData => 300,
            CacheProfile::CadFileMetadata => 3600,
            CacheProfile::SearchResults => 600,
            CacheProfile::AiModelInfo => 1800,
            CacheProfile::SystemMetrics => 60,
        })
    }

    /// How long past its TTL an entry may still be served while one caller recomputes it.
    pub fn grace(self) -> Duration {
        (self.ttl() / 5).clamp(Duration::from_secs(10), Duration::from_secs(300))
    }
}

/// What the tag functions know about a request.
#[derive(Debug, Clone, Default)]
pub struct RouteRequest {
    /// Path parameters by name (`id` for `/api/files/{id}`).
    pub params: Vec<(String, String)>,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// The caller's subject.
    pub caller: Option<String>,
}

impl RouteRequest {
    /// A path parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct RoutePolicy {
    /// HTTP method.
    pub method: &'static str,
    /// Route template as the router declares it.
    pub route: &'static str,
    /// Browser and shared-cache policy.
    pub class: RouteClass,
    /// Response cache profile; `None` means never cached in Redis.
    pub cache: Option<CacheProfile>,
    /// Invalidation tags of a cached response (besides the caller's own tag for private data).
    pub tags: fn(&RouteRequest) -> Vec<String>,
}

fn no_tags(_: &RouteRequest) -> Vec<String> {
    Vec::new()
}

fn file_tags(r: &RouteRequest) -> Vec<String> {
    r.param("id").map(tags::file).into_iter().collect()
}

fn user_tags(r: &RouteRequest) -> Vec<String> {
    r.param("id").map(tags::user).into_iter().collect()
}

fn users_list_tags(_: &RouteRequest) -> Vec<String> {
    vec![tags::users_list()]
}

/// A listing is tagged by each selective filter it has: a change to a file can only affect the
/// listings whose filters the file matches (before or after), plus unfiltered ones.
fn listing_tags(r: &RouteRequest) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = r.query("project") {
        out.push(tags::files_list_project(p.trim()));
    }
    match r.query("uploaded_by") {
        Some("me") | None => {}
        Some(u) => out.push(tags::files_list_uploader(u)),
    }
    if let Some(t) = r.query("tags") {
        out.extend(
            t.split(',')
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty())
                .map(|t| tags::files_list_tag(&t)),
        );
    }
    if out.is_empty() {
        out.push(tags::files_list_all());
    }
    out
}

const CATALOGUE: RouteClass = RouteClass::Catalogue {
    s_maxage: 60,
    stale_while_revalidate: 300,
};

/// Query parameters that make an otherwise shared listing caller-specific.
const CALLER_SPECIFIC_QUERY: &[(&str, &str)] = &[("uploaded_by", "me")];

/// Every route with a caching policy. Routes not listed are private (GET) or never stored.
pub const ROUTES: &[RoutePolicy] = &[
    RoutePolicy {
        method: "GET",
        route: "/api/users/me",
        class: RouteClass::Private,
        cache: Some(CacheProfile::UserData),
        tags: no_tags,
    },
    RoutePolicy {
        method: "GET",
        route: "/api/users/{id}",
        class: RouteClass::Private,
        cache: Some(CacheProfile::UserData),
        tags: user_tags,
    },
    RoutePolicy {
        method: "GET",
        route: "/api/users",
        class: RouteClass::Private,
        cache: Some(CacheProfile::UserData),
        tags: users_list_tags,
    },
    RoutePolicy {
        method: "GET",
        route: "/api/files",
        class: CATALOGUE,
        cache: Some(CacheProfile::CadFileMetadata),
        tags: listing_tags,
    },
    RoutePolicy {
        method: "GET",
        route: "/api/files/{id}",
        class: CATALOGUE,
        cache: Some(CacheProfile::CadFileMetadata),
        tags: file_tags,
    },
    RoutePolicy {
        method: "GET",
        route: "/api/files/{id}/versions",
        class: CATALOGUE,
        cache: Some(CacheProfile::CadFileMetadata),
        tags: file_tags,
    },
    // Search pages are keyed per caller: each caller's first run of a query is recorded in their
    // search history. Tags come from the handler (the query's lexemes).
    RoutePolicy {
        method: "GET",
        route: "/api/search",
        class: RouteClass::Private,
        cache: Some(CacheProfile::SearchResults),
        tags: no_tags,
    },
    RoutePolicy {
        method: "POST",
        route: "/api/search",
        class: RouteClass::NoStore,
        cache: Some(CacheProfile::SearchResults),
        tags: no_tags,
    },
    // Live figures are per-minute buckets: the guide's systemMetrics TTL (60 s) loses nothing.
    RoutePolicy {
        method: "GET",
        route: "/api/admin/performance",
        class: RouteClass::Private,
        cache: Some(CacheProfile::SystemMetrics),
        tags: no_tags,
    },
    // Job status, queue depths and notifications change with no request: never stored.
    RoutePolicy {
        method: "GET",
        route: "/api/jobs/{id}",
        class: RouteClass::NoStore,
        cache: None,
        tags: no_tags,
    },
    RoutePolicy {
        method: "GET",
        route: "/api/admin/queues",
        class: RouteClass::NoStore,
        cache: None,
        tags: no_tags,
    },
    // A redirect to a presigned URL (when there is no CDN) is a short-lived credential.
    RoutePolicy {
        method: "GET",
        route: "/api/files/{id}/thumbnail",
        class: RouteClass::NoStore,
        cache: None,
        tags: no_tags,
    },
    // A presigned URL is a short-lived credential for one caller.
    RoutePolicy {
        method: "GET",
        route: "/api/files/{id}/download",
        class: RouteClass::NoStore,
        cache: None,
        tags: no_tags,
    },
];

/// The route template in the table that a concrete path matches (`/api/files/42` →
/// `/api/files/{id}`); static segments win over captures, as in the router.
pub fn template_for(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&'static str, usize)> = None;
    for p in ROUTES {
        let template: Vec<&str> = p.route.split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut statics = 0;
        let matches = template.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                !s.is_empty()
            } else {
                statics += 1;
                t == s
            }
        });
        if matches && best.is_none_or(|(_, n)| statics > n) {
            best = Some((p.route, statics));
        }
    }
    best.map(|(r, _)| r)
}

/// The table row of a route, if it has one.
pub fn policy(method: &Method, route: &str) -> Option<&'static RoutePolicy> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|p| p.method == method && p.route == route)
}

/// The class of a request, from its method, matched route template and query string. Unknown GET
/// routes are private: the safe default is never to let a shared cache keep something.
pub fn classify(method: &Method, route: Option<&str>, query: Option<&str>) -> RouteClass {
    if method != Method::GET && method != Method::HEAD {
        return RouteClass::NoStore;
    }
    let Some(route) = route else {
        return RouteClass::Private;
    };
    let class = policy(&Method::GET, route).map_or(RouteClass::Private, |p| p.class);
    if matches!(class, RouteClass::Catalogue { .. }) && query.is_some_and(is_caller_specific) {
        return RouteClass::Private;
    }
    class
}

fn is_caller_specific(query: &str) -> bool {
    query.split('&').any(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        CALLER_SPECIFIC_QUERY
            .iter()
            .any(|(ck, cv)| *ck == k && *cv == v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_specific_data_is_never_public() {
        for route in ["/api/users/me", "/api/users/{id}", "/api/users"] {
            let cc = classify(&Method::GET, Some(route), None).cache_control();
            assert!(cc.starts_with("private"), "{route}: {cc}");
        }
        let mine = classify(
            &Method::GET,
            Some("/api/files"),
            Some("tags=a&uploaded_by=me"),
        );
        assert_eq!(mine, RouteClass::Private);
        assert_eq!(
            classify(&Method::GET, Some("/api/unknown"), None),
            RouteClass::Private
        );
        assert_eq!(classify(&Method::GET, None, None), RouteClass::Private);
    }

    #[test]
    fn concrete_paths_map_to_their_templates() {
        assert_eq!(template_for("/api/users/me"), Some("/api/users/me"));
        assert_eq!(template_for("/api/users/42"), Some("/api/users/{id}"));
        assert_eq!(
            template_for("/api/files/42/versions"),
            Some("/api/files/{id}/versions")
        );
        assert_eq!(template_for("/api/files"), Some("/api/files"));
        assert_eq!(template_for("/api/nothing"), None);
    }

    #[test]
    fn the_guides_ttls() {
        let ttl = |p: CacheProfile| p.ttl().as_secs();
        assert_eq!(ttl(CacheProfile::UserData), 300);
        assert_eq!(ttl(CacheProfile::CadFileMetadata), 3600);
        assert_eq!(ttl(CacheProfile::SearchResults), 600);
        assert_eq!(ttl(CacheProfile::AiModelInfo), 1800);
        assert_eq!(ttl(CacheProfile::SystemMetrics), 60);
    }

    #[test]
    fn listings_are_tagged_by_their_selective_filters() {
        let req = |q: &[(&str, &str)]| RouteRequest {
            query: q
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..RouteRequest::default()
        };
        assert_eq!(listing_tags(&req(&[])), vec![tags::files_list_all()]);
        assert_eq!(
            listing_tags(&req(&[("min_size", "10")])),
            vec![tags::files_list_all()]
        );
        let t = listing_tags(&req(&[("project", "Rover"), ("tags", "Steel, abs")]));
        assert_eq!(
            t,
            vec![
                tags::files_list_project("Rover"),
                tags::files_list_tag("steel"),
                tags::files_list_tag("abs")
            ]
        );
    }

    #[test]
    fn catalogue_is_shared_and_mutations_are_not_stored() {
        let cc = classify(&Method::GET, Some("/api/files/{id}"), None).cache_control();
        assert_eq!(
            cc,
            "public, max-age=0, s-maxage=60, stale-while-revalidate=300"
        );
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert_eq!(classify(&m, Some("/api/files"), None), RouteClass::NoStore);
        }
        assert_eq!(
            classify(&Method::GET, Some("/api/files/{id}/download"), None),
            RouteClass::NoStore
        );
    }
}

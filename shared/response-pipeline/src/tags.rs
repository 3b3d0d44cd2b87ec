//! Names of the invalidation tags cached responses carry. The cache layer attaches them when it
//! stores a response; the domain crates invalidate them when they change data. Both use these
//! functions, so the two sides cannot drift apart.

/// Every cached representation of one file: the file, its versions.
pub fn file(id: &str) -> String {
    format!("file:{id}")
}

/// Listings with no selective filter (or only filters a change cannot be matched against).
pub fn files_list_all() -> String {
    "files:list".to_owned()
}

/// Listings filtered by a project.
pub fn files_list_project(project: &str) -> String {
    format!("files:list:project:{}", short(project))
}

/// Listings filtered by an uploader.
pub fn files_list_uploader(user_id: &str) -> String {
    format!("files:list:uploader:{user_id}")
}

/// Listings filtered by a tag.
pub fn files_list_tag(tag: &str) -> String {
    format!("files:list:tag:{}", short(tag))
}

/// Searches whose query contains a term (a normalised lexeme).
pub fn search_term(term: &str) -> String {
    format!("search:term:{}", short(term))
}

/// Every cached search (dropped by a full reindex, which can change any ranking).
pub fn search_all() -> String {
    "search:all".to_owned()
}

/// One user's record as others see it (GET /api/users/{id}).
pub fn user(id: &str) -> String {
    format!("user:{id}")
}

/// Everything cached privately for one caller (their `me`, their private listings).
pub fn caller(subject: &str) -> String {
    format!("caller:{}", short(subject))
}

/// The admin listing of users.
pub fn users_list() -> String {
    "users:list".to_owned()
}

/// What a changed file is known by, before or after the change.
#[derive(Debug, Clone, Default)]
pub struct FileFacts {
    /// File id.
    pub id: String,
    /// Owner's user id.
    pub uploaded_by: String,
    /// Project, if any.
    pub project: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Search lexemes of the file's search document.
    pub search_terms: Vec<String>,
}

/// The tags to invalidate when a file changes from `before` to `after` (either may be absent:
/// creation, deletion): the file itself and exactly the listings and searches it could have
/// appeared in or could now appear in.
pub fn for_file_change(before: Option<&FileFacts>, after: Option<&FileFacts>) -> Vec<String> {
    let mut out = vec![files_list_all()];
    for facts in [before, after].into_iter().flatten() {
        out.push(file(&facts.id));
        out.push(files_list_uploader(&facts.uploaded_by));
        if let Some(p) = &facts.project {
            out.push(files_list_project(p));
        }
        out.extend(facts.tags.iter().map(|t| files_list_tag(t)));
        out.extend(facts.search_terms.iter().map(|t| search_term(t)));
    }
    out.sort();
    out.dedup();
    out
}

/// The tags to invalidate when a user changes.
pub fn for_user_change(user_id: &str, subject: &str) -> Vec<String> {
    vec![user(user_id), caller(subject), users_list()]
}

/// Keeps tag names short and free of characters Redis keys dislike; long or odd values are
/// replaced by a hash (tags only need to be equal when the values are).
fn short(value: &str) -> String {
    let clean = value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if clean {
        value.to_lowercase()
    } else {
        format!(
            "h{:016x}",
            xxhash_rust::xxh3::xxh3_64(value.to_lowercase().as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_change_touches_only_its_own_listings() {
        let before = FileFacts {
            id: "f1".into(),
            uploaded_by: "u1".into(),
            project: Some("Rover".into()),
            tags: vec!["steel".into()],
            search_terms: vec!["bracket".into()],
        };
        let after = FileFacts {
            project: Some("Lander Mk II".into()),
            ..before.clone()
        };
        let tags = for_file_change(Some(&before), Some(&after));
        assert!(tags.contains(&file("f1")));
        assert!(tags.contains(&files_list_project("Rover")));
        assert!(tags.contains(&files_list_project("Lander Mk II")));
        assert!(tags.contains(&files_list_tag("steel")));
        assert!(tags.contains(&search_term("bracket")));
        assert!(!tags.contains(&files_list_project("Other")));
        assert_eq!(files_list_project("ROVER"), files_list_project("rover"));
        assert!(files_list_project("Lander Mk II").starts_with("files:list:project:h"));
    }
}

//! Validation of client-supplied file metadata. Every refusal names the field.

use api_common::ApiError;
use serde::Deserialize;

/// The guide's upload limit: 100 MB.
pub const MAX_FILE_BYTES: i64 = 100 * 1024 * 1024;
const MAX_TAGS: usize = 32;
const MAX_TAG_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 255;
const MAX_LABEL_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 4000;

/// Extensions of the CAD, mesh and drawing formats the platform accepts.
pub const ACCEPTED_EXTENSIONS: &[&str] = &[
    "stl", "obj", "ply", "off", "3mf", "amf", "dxf", "dwg", "step", "stp", "iges", "igs", "brep",
    "sat", "x_t", "x_b", "sldprt", "sldasm", "ipt", "iam", "f3d", "fcstd", "gltf", "glb", "fbx",
    "dae", "3ds", "zip",
];

/// Body of POST /api/files and the file part of POST /api/files/{id}/versions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFile {
    /// Original file name, with its extension.
    pub name: String,
    /// Size in bytes the client will upload.
    pub size: i64,
    /// MIME type the client will send with the PUT.
    pub content_type: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Project.
    pub project_name: Option<String>,
    /// Part.
    pub part_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// A validated new file.
#[derive(Debug, Clone)]
pub struct ValidFile {
    /// Name as given.
    pub original_name: String,
    /// Storage-safe name.
    pub filename: String,
    /// Size.
    pub size: i64,
    /// Normalised MIME type.
    pub content_type: String,
    /// Normalised tags.
    pub tags: Vec<String>,
    /// Project.
    pub project_name: Option<String>,
    /// Part.
    pub part_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

impl NewFile {
    /// Checks every field.
    pub fn validate(self) -> Result<ValidFile, ApiError> {
        let (original_name, filename) = validate_name(&self.name)?;
        let size = validate_size(self.size)?;
        let content_type = validate_content_type(&self.content_type)?;
        Ok(ValidFile {
            original_name,
            filename,
            size,
            content_type,
            tags: normalise_tags(self.tags)?,
            project_name: optional_label("project_name", self.project_name)?,
            part_name: optional_label("part_name", self.part_name)?,
            description: optional_text("description", self.description, MAX_DESCRIPTION_CHARS)?,
        })
    }
}

/// Checks a file name; returns it trimmed and its storage-safe form.
pub fn validate_name(name: &str) -> Result<(String, String), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid("name", "1 to 255 characters"));
    }
    if name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
    {
        return Err(ApiError::invalid(
            "name",
            "a plain file name: no path separators or control characters",
        ));
    }
    let ext = extension(name);
    if !ext
        .as_deref()
        .is_some_and(|e| ACCEPTED_EXTENSIONS.contains(&e))
    {
        return Err(ApiError::invalid(
            "name",
            format!(
                "unsupported file type {:?}; accepted extensions: {}",
                ext.unwrap_or_default(),
                ACCEPTED_EXTENSIONS.join(", ")
            ),
        ));
    }
    Ok((name.to_owned(), storage_name(name)))
}

/// The lower-case extension, treating `.x_t`-style names like any other.
pub fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// A name safe in S3 keys and download headers: ASCII letters, digits, `.`, `_` and `-`.
fn storage_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.len() > 200 {
        // Keep the extension, which the processors use as a hint.
        let ext = extension(name).unwrap_or_default();
        out.truncate(200 - ext.len() - 1);
        out.push('.');
        out.push_str(&ext);
    }
    out
}

/// Checks a declared size against the upload limit.
pub fn validate_size(size: i64) -> Result<i64, ApiError> {
    if size <= 0 {
        return Err(ApiError::invalid(
            "size",
            "must be a positive number of bytes",
        ));
    }
    if size > MAX_FILE_BYTES {
        return Err(ApiError::invalid(
            "size",
            format!("{size} bytes exceeds the upload limit of {MAX_FILE_BYTES} bytes (100 MB)"),
        ));
    }
    Ok(size)
}

/// Checks a MIME type's shape (`type/subtype`, optional parameters) and lower-cases it.
pub fn validate_content_type(ct: &str) -> Result<String, ApiError> {
    let ct = ct.trim().to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    let valid_token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    match essence.split_once('/') {
        Some((t, s)) if valid_token(t) && valid_token(s) && ct.len() <= 127 => Ok(ct),
        _ => Err(ApiError::invalid(
            "content_type",
            "a MIME type such as model/stl or application/octet-stream",
        )),
    }
}

/// Trims, lower-cases and de-duplicates tags, refusing empty or overlong ones.
pub fn normalise_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.into_iter().enumerate() {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty()
            || tag.chars().count() > MAX_TAG_CHARS
            || tag.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                format!("tags[{i}]"),
                format!("1 to {MAX_TAG_CHARS} printable characters"),
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// A short optional label (project, part); blank means absent.
pub fn optional_label(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    optional_text(field, value, MAX_LABEL_CHARS)
}

fn optional_text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("at most {max} characters"),
        )),
        Some(v) => Ok(Some(v)),
    }
}

/// Checks a description.
pub fn optional_description(value: Option<String>) -> Result<Option<String>, ApiError> {
    optional_text("description", value, MAX_DESCRIPTION_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ApiError) -> Option<String> {
        match err {
            ApiError::BadRequest { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn names_are_checked_and_made_storage_safe() {
        let (orig, safe) = validate_name("  Bracket v2 (final).STEP ").unwrap();
        assert_eq!(orig, "Bracket v2 (final).STEP");
        assert_eq!(safe, "Bracket_v2__final_.STEP");
        for bad in [
            "",
            "../x.stl",
            "a/b.stl",
            "photo.png",
            "noext",
            "x\u{7}y.stl",
        ] {
            assert_eq!(
                field_of(validate_name(bad).unwrap_err()).as_deref(),
                Some("name"),
                "{bad:?}"
            );
        }
        let long = format!("{}.stl", "a".repeat(250));
        let (_, safe) = validate_name(&long).unwrap();
        assert!(safe.len() <= 200 && safe.ends_with(".stl"));
    }

    #[test]
    fn size_limit_is_the_guides_100_mb() {
        assert!(validate_size(MAX_FILE_BYTES).is_ok());
        assert_eq!(
            field_of(validate_size(MAX_FILE_BYTES + 1).unwrap_err()).as_deref(),
            Some("size")
        );
        assert!(validate_size(0).is_err());
    }

    #[test]
    fn tags_are_normalised_and_bad_ones_named_by_index() {
        let tags =
            normalise_tags(vec![" Bracket ".into(), "bracket".into(), "Steel".into()]).unwrap();
        assert_eq!(tags, vec!["bracket", "steel"]);
        let err = normalise_tags(vec!["ok".into(), "  ".into()]).unwrap_err();
        assert_eq!(field_of(err).as_deref(), Some("tags[1]"));
    }

    #[test]
    fn content_types_must_look_like_mime_types() {
        assert_eq!(validate_content_type("Model/STL").unwrap(), "model/stl");
        assert!(validate_content_type("application/octet-stream; charset=binary").is_ok());
        assert!(validate_content_type("stl").is_err());
        assert!(validate_content_type("a b/c").is_err());
    }
}

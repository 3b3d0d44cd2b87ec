//! The crate's single error type.

/// Why a file could not be analysed or rendered; the messages are written to be shown to a user.
#[derive(Debug, thiserror::Error)]
pub enum GeometryError {
    /// The input holds no bytes at all.
    #[error("the file is empty (0 bytes)")]
    EmptyFile,
    /// The content is not one of the supported CAD formats (`what` names what it looks like).
    #[error("unsupported file type: {what}")]
    Unsupported {
        /// What the signature says the file is, e.g. "PNG image".
        what: String,
    },
    /// The file is of a known format but its content is malformed or truncated.
    #[error("invalid {format} file: {detail}")]
    Invalid {
        /// The format name, e.g. "STL".
        format: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// The file is well formed but exceeds a safety limit of this library.
    #[error("{format} file exceeds a limit: {detail}")]
    Limit {
        /// The format name.
        format: &'static str,
        /// Which limit, and the value found.
        detail: String,
    },
    /// There is nothing to draw, or an image could not be encoded.
    #[error("thumbnail rendering failed: {0}")]
    Render(String),
}

impl GeometryError {
    /// Shorthand for [`GeometryError::Invalid`].
    pub fn invalid(format: &'static str, detail: impl Into<String>) -> Self {
        GeometryError::Invalid {
            format,
            detail: detail.into(),
        }
    }

    /// Shorthand for [`GeometryError::Limit`].
    pub fn limit(format: &'static str, detail: impl Into<String>) -> Self {
        GeometryError::Limit {
            format,
            detail: detail.into(),
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, GeometryError>;

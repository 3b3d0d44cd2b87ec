//! Roles and what each may do.

use serde::{Deserialize, Serialize};

/// A platform role: admin (everything), engineer (writes own files, reads all), viewer (reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, writes nothing.
    Viewer,
    /// Reads everything, writes their own files.
    Engineer,
    /// May do everything.
    Admin,
}

impl Role {
    /// The role's name as stored in the database and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Engineer => "engineer",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name, case-insensitively.
    pub fn parse(name: &str) -> Option<Role> {
        match name.trim().to_ascii_lowercase().as_str() {
            "admin" | "admins" | "administrators" => Some(Role::Admin),
            "engineer" | "engineers" => Some(Role::Engineer),
            "viewer" | "viewers" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// Whether this role may create and change files (its own; admins any).
    pub fn can_write_files(self) -> bool {
        matches!(self, Role::Admin | Role::Engineer)
    }

    /// Whether this role may act on resources owned by someone else.
    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
            .ok_or_else(|| format!("unknown role {s:?}: expected admin, engineer or viewer"))
    }
}

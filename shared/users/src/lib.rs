//! Users: the row behind every caller (created on their first authenticated request), profiles
//! and roles, and the users-api router.

mod current;
mod error;
pub mod repo;
mod routes;

pub use current::CurrentUser;
pub use error::UsersError;
pub use repo::User;
pub use routes::{UsersState, router};

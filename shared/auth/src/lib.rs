//! Who is calling. In Lambda the HTTP API's JWT authorizer has already verified the token and
//! put its claims in the request context; the local server does the same with a locally signed
//! token ([`local`]), so handlers read the caller the same way in both places.

mod caller;
pub mod local;
mod role;

pub use caller::{Caller, caller_from_claims, claims_of, request_context};
pub use role::Role;

/// Why a caller could not be established from a request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request carries no authorizer claims (no token, or not through the authorizer).
    #[error("no authenticated caller in the request context")]
    MissingClaims,
    /// The claims lack the subject.
    #[error("the token has no subject claim")]
    MissingSubject,
    /// A locally minted token failed verification.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

impl From<AuthError> for api_common::ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::MissingClaims | AuthError::MissingSubject | AuthError::InvalidToken(_) => {
                api_common::ApiError::Unauthorized
            }
        }
    }
}

//! Local stand-in for the HTTP API's JWT authorizer: tokens signed with a shared secret (HS256),
//! verified the way the gateway verifies Cognito's (signature, issuer, audience, expiry), and turned
//! into the same request context a Lambda handler receives.

use std::collections::HashMap;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::{AuthError, Role};

/// Issuer written into local tokens, unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "https://local.cad-platform.invalid/issuer";
/// Audience written into local tokens, unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "cad-platform-local";

/// Signs and verifies local tokens.
#[derive(Clone)]
pub struct LocalAuthority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for LocalAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAuthority")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// What a minted token says about its holder.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Subject (`sub`).
    pub subject: String,
    /// Email claim.
    pub email: String,
    /// `cognito:username` claim.
    pub username: String,
    /// Written as `custom:role` and as the only `cognito:groups` entry, as Cognito would.
    pub role: Role,
    /// Lifetime in seconds.
    pub ttl_seconds: i64,
}

impl LocalAuthority {
    /// An authority for the given secret, issuer and audience.
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Signs a token for the given identity.
    pub fn mint(&self, req: &TokenRequest) -> Result<String, AuthError> {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({
            "sub": req.subject,
            "email": req.email,
            "cognito:username": req.username,
            "custom:role": req.role.as_str(),
            "cognito:groups": [req.role.as_str()],
            "iss": self.issuer,
            "aud": self.audience,
            "token_use": "id",
            "iat": now,
            "exp": now + req.ttl_seconds,
        });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }

    /// Verifies a bearer token and returns its claims flattened to strings, as API Gateway does.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        Ok(flatten_claims(&data.claims))
    }
}

/// API Gateway hands claims to Lambda as strings; arrays become `[a b]`.
pub fn flatten_claims(claims: &Map<String, Value>) -> HashMap<String, String> {
    claims
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => {
                    let parts: Vec<String> = items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    format!("[{}]", parts.join(" "))
                }
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// Extracts the bearer token from an `Authorization` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::{caller_from_claims, claims_of};
    use crate::request_context;

    fn authority() -> LocalAuthority {
        LocalAuthority::new(b"secret", DEFAULT_ISSUER, DEFAULT_AUDIENCE)
    }

    fn request(role: Role, ttl: i64) -> TokenRequest {
        TokenRequest {
            subject: "user-1".into(),
            email: "u@example.com".into(),
            username: "u".into(),
            role,
            ttl_seconds: ttl,
        }
    }

    #[test]
    fn minted_token_verifies_into_the_same_caller() {
        let a = authority();
        let token = a.mint(&request(Role::Engineer, 60)).unwrap();
        let claims = a.verify(&token).unwrap();
        assert_eq!(claims["cognito:groups"], "[engineer]");
        let ctx = request_context(claims, "GET", "/api/users/me");
        let caller = caller_from_claims(claims_of(&ctx).unwrap()).unwrap();
        assert_eq!(caller.subject, "user-1");
        assert_eq!(caller.role, Role::Engineer);
    }

    #[test]
    fn wrong_secret_audience_or_expired_tokens_are_refused() {
        let token = authority().mint(&request(Role::Admin, 60)).unwrap();
        let other = LocalAuthority::new(b"other", DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        assert!(other.verify(&token).is_err());
        let other_aud = LocalAuthority::new(b"secret", DEFAULT_ISSUER, "someone-else");
        assert!(other_aud.verify(&token).is_err());
        let expired = authority().mint(&request(Role::Admin, -3600)).unwrap();
        assert!(authority().verify(&expired).is_err());
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}

//! The caller as the JWT authorizer describes it.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use http::request::Parts;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;

use crate::{AuthError, Role};

/// The authenticated caller, taken from the authorizer claims in the request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity provider's subject (Cognito `sub`), stable across email changes.
    pub subject: String,
    /// The email claim, when the token has one.
    pub email: Option<String>,
    /// `cognito:username` or `username`, when present.
    pub username: Option<String>,
    /// The role the token asserts (`custom:role`, else the highest of `cognito:groups`, else viewer).
    pub role: Role,
}

/// Builds a caller from JWT claims as API Gateway passes them (every value a string).
pub fn caller_from_claims(claims: &HashMap<String, String>) -> Result<Caller, AuthError> {
    let subject = claims
        .get("sub")
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingSubject)?
        .clone();
    let role = claims
        .get("custom:role")
        .and_then(|r| Role::parse(r))
        .or_else(|| {
            claims
                .get("cognito:groups")
                .and_then(|g| highest_group_role(g))
        })
        // Least privilege when the token says nothing about the role.
        .unwrap_or(Role::Viewer);
    let email = claims.get("email").filter(|s| !s.is_empty()).cloned();
    let username = claims
        .get("cognito:username")
        .or_else(|| claims.get("username"))
        .filter(|s| !s.is_empty())
        .cloned();
    Ok(Caller {
        subject,
        email,
        username,
        role,
    })
}

/// API Gateway flattens array claims to text such as `[admin engineer]`; JSON arrays and
/// comma-separated lists are accepted too.
fn highest_group_role(groups: &str) -> Option<Role> {
    let trimmed = groups.trim();
    let names: Vec<String> = match serde_json::from_str::<Vec<String>>(trimmed) {
        Ok(list) => list,
        Err(_) => trimmed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches('"').to_owned())
            .collect(),
    };
    names.iter().filter_map(|n| Role::parse(n)).max()
}

/// The request context an HTTP API JWT authorizer would attach for these claims.
pub fn request_context(
    claims: HashMap<String, String>,
    method: &str,
    path: &str,
) -> RequestContext {
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.authorizer = Some(authorizer);
    ctx.stage = Some("$default".to_owned());
    ctx.http.method = method.parse().unwrap_or_default();
    ctx.http.path = Some(path.to_owned());
    RequestContext::ApiGatewayV2(ctx)
}

/// The claims in a request's context, if the authorizer put any there.
pub fn claims_of(context: &RequestContext) -> Option<&HashMap<String, String>> {
    context.authorizer()?.jwt.as_ref().map(|jwt| &jwt.claims)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = api_common::ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = parts
            .extensions
            .get::<RequestContext>()
            .ok_or(AuthError::MissingClaims)?;
        let claims = claims_of(context).ok_or(AuthError::MissingClaims)?;
        Ok(caller_from_claims(claims)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn role_from_custom_claim_wins_over_groups() {
        let c = caller_from_claims(&claims(&[
            ("sub", "abc"),
            ("custom:role", "engineer"),
            ("cognito:groups", "[admin]"),
        ]))
        .unwrap();
        assert_eq!(c.role, Role::Engineer);
    }

    #[test]
    fn groups_in_every_flattened_form_give_the_highest_role() {
        for groups in [
            "[viewer admin]",
            "[\"viewer\",\"admin\"]",
            "viewer,admin",
            "admin",
        ] {
            let c =
                caller_from_claims(&claims(&[("sub", "s"), ("cognito:groups", groups)])).unwrap();
            assert_eq!(c.role, Role::Admin, "{groups}");
        }
    }

    #[test]
    fn no_role_means_viewer_and_no_subject_is_refused() {
        let c = caller_from_claims(&claims(&[("sub", "s"), ("email", "a@b.c")])).unwrap();
        assert_eq!(c.role, Role::Viewer);
        assert_eq!(c.email.as_deref(), Some("a@b.c"));
        assert!(matches!(
            caller_from_claims(&claims(&[("email", "a@b.c")])),
            Err(AuthError::MissingSubject)
        ));
    }
}

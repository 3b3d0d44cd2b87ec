//! Request extractors whose rejections are [`ApiError`]s naming the offending field, instead of
//! axum's plain-text rejections.

use axum::extract::{FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON request body; malformed JSON and invalid fields become a 400 naming the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::bad_request(
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        parse_json(&body).map(ApiJson)
    }
}

/// Parses JSON, reporting the path of the first invalid field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else if path == "." {
            // A missing field is reported at the parent level; serde names it in the message.
            let message = inner.to_string();
            let field = missing_field_name(&message);
            ApiError::BadRequest {
                field,
                message: format!("invalid request body: {message}"),
            }
        } else {
            ApiError::invalid(path, format!("invalid value: {inner}"))
        }
    })
}

/// The query string; unknown types and invalid values become a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                if path == "." {
                    ApiError::BadRequest {
                        field: missing_field_name(&message),
                        message: format!("invalid query string: {message}"),
                    }
                } else {
                    ApiError::invalid(path, format!("invalid query parameter: {message}"))
                }
            })
    }
}

/// The field serde names in a "missing field" or "unknown field" message.
fn missing_field_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// Parses a resource id from a path segment; a malformed id is a 404, since no such resource exists.
pub fn parse_id(raw: &str, resource: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("{resource} {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Vec<String>,
    }

    fn field(err: ApiError) -> Option<String> {
        match err {
            ApiError::BadRequest { field, .. } => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(
            field(parse_json::<Body>(br#"{"name":"a","tags":["x",3]}"#).unwrap_err()).as_deref(),
            Some("tags[1]")
        );
        assert_eq!(
            field(parse_json::<Body>(br#"{"tags":[]}"#).unwrap_err()).as_deref(),
            Some("name")
        );
        assert_eq!(
            field(parse_json::<Body>(br#"{"name":"a","tags":[],"colour":1}"#).unwrap_err())
                .as_deref(),
            Some("colour")
        );
        assert_eq!(field(parse_json::<Body>(br#"{"name":"#).unwrap_err()), None);
    }
}

/// The request's correlation id (the `x-request-id` the shared layers set; empty when absent),
/// carried into every job the request queues so worker logs can be joined to it.
#[derive(Debug, Clone, Default)]
pub struct CorrelationId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(CorrelationId(
            parts
                .headers
                .get(crate::REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        ))
    }
}

//! Object storage on S3: presigned uploads and downloads (clients move the bytes, never Lambda),
//! object inspection, deletion and reading.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// S3 (or the network to it) failed; retrying may help.
    #[error("S3 {operation} failed: {message}")]
    S3 {
        /// The S3 operation.
        operation: &'static str,
        /// The SDK's full error context.
        message: String,
    },
    /// A presigning request was invalid (e.g. an expiry out of range).
    #[error("could not presign: {0}")]
    Presign(String),
    /// The object is larger than the caller accepts; nothing was read.
    #[error("the object is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit given.
        max: u64,
    },
}

fn s3_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StorageError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StorageError::S3 {
        operation,
        message: DisplayErrorContext(err).to_string(),
    }
}

/// Builds the S3 client once per process. Path-style addressing when an endpoint override is set,
/// because local S3 (moto) cannot serve `bucket.127.0.0.1` virtual hosts.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let builder =
        aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// A presigned HTTP request the client performs itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PresignedRequest {
    /// The URL, including the signature.
    pub url: String,
    /// The HTTP method to use.
    pub method: String,
    /// Headers the client must send exactly as given.
    pub headers: BTreeMap<String, String>,
    /// When the signature stops being valid (RFC 3339).
    pub expires_at: String,
}

/// What S3 knows about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes (MD5 of the content for single-part uploads).
    pub etag: Option<String>,
    /// Content type stored with the object.
    pub content_type: Option<String>,
}

/// One bucket of objects.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl ObjectStore {
    /// A store over `bucket`, using an already-built client.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The underlying client, for operations this type does not wrap.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// A presigned PUT for uploading `key` with the given content type.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        let presigning = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StorageError::Presign(e.to_string()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .presigned(presigning)
            .await
            .map_err(|e| s3_error("presign PutObject", e))?;
        Ok(to_presigned(req, expires_in))
    }

    /// A presigned GET that downloads `key` under `filename`.
    pub async fn presign_get(
        &self,
        key: &str,
        filename: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        let presigning = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StorageError::Presign(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition(filename))
            .presigned(presigning)
            .await
            .map_err(|e| s3_error("presign GetObject", e))?;
        Ok(to_presigned(req, expires_in))
    }

    /// The object's size and ETag, or `None` if it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: out.e_tag().map(|t| t.trim_matches('"').to_owned()),
                content_type: out.content_type().map(str::to_owned),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(s3_error("HeadObject", err)),
        }
    }

    /// Stores bytes under `key`.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.put_with_cache_control(key, body, content_type, None)
            .await
    }

    /// Stores bytes under `key` with a `Cache-Control` the CDN and browsers will honour (e.g.
    /// `immutable` for content-addressed objects).
    pub async fn put_with_cache_control(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: Option<&str>,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_cache_control(cache_control.map(str::to_owned))
            .body(body.into())
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(())
    }

    /// Reads a whole object, refusing objects larger than `max_bytes` before reading them.
    pub async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(s3_error("GetObject", err)),
        };
        let declared = out.content_length().unwrap_or(0).max(0) as u64;
        if declared > max_bytes {
            return Err(StorageError::TooLarge {
                size: declared,
                max: max_bytes,
            });
        }
        let bytes = out.body.collect().await.map_err(|e| StorageError::S3 {
            operation: "GetObject body",
            message: e.to_string(),
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Deletes the given keys (missing keys are not an error), in batches of S3's limit of 1000.
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), StorageError> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StorageError::S3 {
                    operation: "DeleteObjects",
                    message: e.to_string(),
                })?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StorageError::S3 {
                    operation: "DeleteObjects",
                    message: e.to_string(),
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| s3_error("DeleteObjects", e))?;
            if let Some(first) = out.errors().first() {
                return Err(StorageError::S3 {
                    operation: "DeleteObjects",
                    message: format!(
                        "{} of {} keys not deleted, first {:?}: {:?}",
                        out.errors().len(),
                        chunk.len(),
                        first.key(),
                        first.message()
                    ),
                });
            }
        }
        Ok(())
    }
}

fn to_presigned(
    req: aws_sdk_s3::presigning::PresignedRequest,
    expires_in: Duration,
) -> PresignedRequest {
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(expires_in).unwrap_or(chrono::Duration::zero());
    PresignedRequest {
        url: req.uri().to_owned(),
        method: req.method().to_owned(),
        headers: req
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// `attachment; filename="…"` with an RFC 5987 UTF-8 fallback, so names with quotes or
/// non-ASCII characters cannot break the header.
fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe_for_any_name() {
        let cd = content_disposition("bracket \"v2\".stl");
        assert!(
            cd.starts_with("attachment; filename=\"bracket _v2_.stl\""),
            "{cd}"
        );
        assert!(cd.contains("filename*=UTF-8''bracket%20%22v2%22.stl"));
        assert!(content_disposition("pièce.step").contains("pi%C3%A8ce.step"));
    }
}

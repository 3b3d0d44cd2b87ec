//! The AWS resources the template declares, created locally (in moto) with the same settings.
//! Every call is idempotent, so start-up can always run it.

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::LocalError;

fn aws_err(op: &str, e: impl std::error::Error) -> LocalError {
    LocalError::Aws(format!(
        "{op}: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    ))
}

/// Creates the uploads bucket with the CORS rules browsers need for presigned PUTs.
pub async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), LocalError> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) => {}
        Err(e) => {
            return Err(aws_err("CreateBucket", e));
        }
    }
    let rule = CorsRule::builder()
        .allowed_methods("PUT")
        .allowed_methods("GET")
        .allowed_origins("*")
        .allowed_headers("*")
        .expose_headers("ETag")
        .max_age_seconds(3000)
        .build()
        .map_err(|e| aws_err("CorsRule", e))?;
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .map_err(|e| aws_err("CorsConfiguration", e))?,
        )
        .send()
        .await
        .map_err(|e| aws_err("PutBucketCors", e))?;
    Ok(())
}

/// Creates a queue and its dead-letter queue, redriving after `max_receive_count` receives.
/// Returns the queue URL.
pub async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout_s: u32,
    max_receive_count: u32,
) -> Result<String, LocalError> {
    let dlq_name = format!("{name}-dlq");
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| aws_err("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| LocalError::Aws(format!("CreateQueue {dlq_name}: no URL")))?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_err("GetQueueAttributes", e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| LocalError::Aws(format!("{dlq_name}: no QueueArn")))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count,
    })
    .to_string();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_s.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| aws_err("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| LocalError::Aws(format!("CreateQueue {name}: no URL")))?;
    Ok(url)
}

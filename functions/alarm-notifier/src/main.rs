//! Lambda function subscribed to the alarm SNS topic. Wiring only: the alarm → notification
//! mapping lives in `notifications::alarms`. A record that cannot be parsed is logged and
//! skipped (SNS would only redeliver the same text); a failure to queue fails the invocation so
//! SNS retries it.

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use notifications::Notifier;
use notifications::alarms::{AlarmMessage, AlarmRouting, dispatch};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bootstrap::init_tracing();
    let aws = bootstrap::aws_config().await;
    let pool = bootstrap::database(&aws).await?;
    let (_, _, producer) = bootstrap::jobs(&aws).await?;
    let notifier = Notifier::new(producer);
    let routing = AlarmRouting::from_env();
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnsEvent>| {
        let (pool, notifier, routing) = (&pool, &notifier, &routing);
        async move {
            let mut queued = 0;
            for record in event.payload.records {
                let alarm = match AlarmMessage::parse(&record.sns.message) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(message_id = %record.sns.message_id, error = %e, "skipping an SNS message that is not an alarm");
                        continue;
                    }
                };
                queued += dispatch(pool, notifier, &record.sns.message_id, &alarm, routing).await?;
            }
            Ok::<_, Error>(serde_json::json!({ "queued": queued }))
        }
    }))
    .await
}

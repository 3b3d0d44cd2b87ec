//! Small DynamoDB helpers shared by the tracking and idempotency tables.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, KeySchemaElement, KeyType, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification,
};

use crate::error::{Error, Result};

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    match item.get(key) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(crate) fn req_s<'a>(item: &'a Item, key: &str) -> Result<&'a str> {
    get_s(item, key).ok_or_else(|| Error::CorruptRecord(format!("attribute {key} missing")))
}

/// Builds an update expression where every attribute goes through `#name` / `:name`
/// placeholders, so reserved words (`status`, `result`, ...) never break an expression.
#[derive(Default)]
pub(crate) struct Update {
    sets: Vec<String>,
    removes: Vec<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Update {
    pub fn name(&mut self, attr: &str) -> String {
        let p = format!("#{attr}");
        self.names.insert(p.clone(), attr.to_owned());
        p
    }

    pub fn value(&mut self, placeholder: &str, v: AttributeValue) -> String {
        let p = format!(":{placeholder}");
        self.values.insert(p.clone(), v);
        p
    }

    pub fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        let val = self.value(attr, v);
        self.sets.push(format!("{name} = {val}"));
        self
    }

    pub fn set_if_absent(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let name = self.name(attr);
        let val = self.value(attr, v);
        self.sets
            .push(format!("{name} = if_not_exists({name}, {val})"));
        self
    }

    pub fn remove(&mut self, attr: &str) -> &mut Self {
        let name = self.name(attr);
        self.removes.push(name);
        self
    }

    pub fn expression(&self) -> String {
        let mut e = String::new();
        if !self.sets.is_empty() {
            e.push_str("SET ");
            e.push_str(&self.sets.join(", "));
        }
        if !self.removes.is_empty() {
            if !e.is_empty() {
                e.push(' ');
            }
            e.push_str("REMOVE ");
            e.push_str(&self.removes.join(", "));
        }
        e
    }
}

/// Definition of a table for [`create_table`].
pub(crate) struct TableDef<'a> {
    pub name: &'a str,
    pub hash_key: &'a str,
    /// Extra string attributes used by GSIs.
    pub attributes: &'a [&'a str],
    pub gsis: Vec<aws_sdk_dynamodb::types::GlobalSecondaryIndex>,
    pub ttl_attribute: &'a str,
}

pub(crate) fn key(attr: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(attr)
        .key_type(kind)
        .build()
        .map_err(|e| Error::Config(e.to_string()))
}

/// Creates an on-demand table (idempotent: an existing table is accepted), waits until it is
/// ACTIVE (at most 60 s) and enables TTL on `ttl_attribute`.
pub(crate) async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    def: TableDef<'_>,
) -> Result<()> {
    let mut attrs = vec![def.hash_key];
    attrs.extend_from_slice(def.attributes);
    let mut req = client
        .create_table()
        .table_name(def.name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(key(def.hash_key, KeyType::Hash)?);
    for a in attrs {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| Error::Config(e.to_string()))?,
        );
    }
    for g in def.gsis {
        req = req.global_secondary_indexes(g);
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(Error::aws("dynamodb", "CreateTable", e)),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = client
            .describe_table()
            .table_name(def.name)
            .send()
            .await
            .map_err(|e| Error::aws("dynamodb", "DescribeTable", e))?;
        let status = out.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Config(format!(
                "table {} did not become ACTIVE",
                def.name
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(def.ttl_attribute)
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    match client
        .update_time_to_live()
        .table_name(def.name)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Real DynamoDB refuses to re-enable TTL that is already enabled.
        Err(e) if format!("{e:?}").contains("TimeToLive is already enabled") => Ok(()),
        Err(e) => Err(Error::aws("dynamodb", "UpdateTimeToLive", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_expression_uses_placeholders() {
        let mut u = Update::default();
        u.set("status", s("running"))
            .set_if_absent("created_at", s("t"))
            .remove("error");
        assert_eq!(
            u.expression(),
            "SET #status = :status, #created_at = if_not_exists(#created_at, :created_at) REMOVE #error"
        );
        assert_eq!(u.names["#status"], "status");
        assert_eq!(u.values.len(), 2);
    }
}

//! Connection specs from lava's DynamoDB table (`lava.<REALM>.connections`, key `conn_id`).
//!
//! The shim reads its one conn_id with GetItem. The helper needs host -> spec, so it scans the
//! table for docker specs (paginated) and keeps the result in the cache dir for
//! `INDEX_TTL_SECS`, so a warm `get` makes no DynamoDB call; a host missing from a cached index
//! triggers one rescan before "not found".

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::{ConnectionStore, SpecSet, StoreError};
use crate::aws::{self, CallOptions};
use crate::cache::{encode, now_secs, Cache};
use crate::spec::connection::ConnectionSpec;

/// How long a scanned index of docker specs is reused: a new or changed spec is seen within
/// this time (immediately when the host was not in the index).
pub const INDEX_TTL_SECS: i64 = 300;
/// Items per Scan page.
pub const SCAN_PAGE: i32 = 100;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub table: String,
    cache: Cache,
}

#[derive(Serialize, Deserialize)]
struct Index {
    table: String,
    fetched_at: i64,
    items: Vec<Value>,
}

/// A DynamoDB attribute as JSON: numbers stay numbers, sets become arrays.
pub fn attr_to_json(a: &AttributeValue) -> Value {
    match a {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), attr_to_json(v)))
                .collect(),
        ),
        AttributeValue::L(l) => Value::Array(l.iter().map(attr_to_json).collect()),
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(|n| number(n)).collect()),
        AttributeValue::B(b) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
        }
        AttributeValue::Bs(bs) => Value::Array(
            bs.iter()
                .map(|b| {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn number(n: &str) -> Value {
    if let Ok(i) = n.parse::<i64>() {
        return Value::Number(i.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(n.to_string()))
}

pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attr_to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

impl DynamoStore {
    pub fn new(table: impl Into<String>, cache: Cache) -> Self {
        DynamoStore {
            table: table.into(),
            cache,
        }
    }

    fn err(&self, message: String) -> StoreError {
        StoreError::Dynamo {
            table: self.table.clone(),
            message,
        }
    }

    fn index_name(&self) -> String {
        format!("index@{}.json", encode(&self.table))
    }

    fn to_set(&self, items: &[Value]) -> SpecSet {
        let mut set = SpecSet::default();
        let origin = format!("dynamodb:{}", self.table);
        for item in items {
            set.push_record(item, &origin);
        }
        set
    }

    /// Scan every docker spec, page by page, and refresh the cached index.
    pub async fn scan(&self) -> Result<SpecSet, StoreError> {
        tracing::debug!(table = %self.table, "scanning DynamoDB for docker specs");
        let client = aws::dynamodb(&CallOptions::default()).await;
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = client
                .scan()
                .table_name(&self.table)
                .filter_expression("#t = :docker")
                .expression_attribute_names("#t", "type")
                .expression_attribute_values(":docker", AttributeValue::S("docker".into()))
                .limit(SCAN_PAGE)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.err(format!("Scan: {}", aws::error_text(&e))))?;
            items.extend(out.items().iter().map(item_to_json));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let index = Index {
            table: self.table.clone(),
            fetched_at: now_secs(),
            items,
        };
        if let Err(e) = self.cache.write_json(&self.index_name(), &index) {
            tracing::warn!(error = %e, "DynamoDB index not cached");
        }
        Ok(self.to_set(&index.items))
    }

    fn cached(&self) -> Option<SpecSet> {
        let index: Index = self.cache.read_json(&self.index_name())?;
        let age = now_secs() - index.fetched_at;
        (index.table == self.table && (0..INDEX_TTL_SECS).contains(&age))
            .then(|| self.to_set(&index.items))
    }
}

impl ConnectionStore for DynamoStore {
    async fn load_all(&self) -> Result<SpecSet, StoreError> {
        match self.cached() {
            Some(set) => Ok(set),
            None => self.scan().await,
        }
    }

    async fn refresh(&self) -> Result<Option<SpecSet>, StoreError> {
        self.scan().await.map(Some)
    }

    async fn load_all_cached(&self) -> Result<(SpecSet, bool), StoreError> {
        match self.cached() {
            Some(set) => Ok((set, true)),
            None => Ok((self.scan().await?, false)),
        }
    }

    async fn get(&self, conn_id: &str) -> Result<Option<ConnectionSpec>, StoreError> {
        let client = aws::dynamodb(&CallOptions::default()).await;
        let out = client
            .get_item()
            .table_name(&self.table)
            .key("conn_id", AttributeValue::S(conn_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(format!("GetItem {conn_id}: {}", aws::error_text(&e))))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let set = self.to_set(&[item_to_json(&item)]);
        if let Some(bad) = set.invalid.first() {
            return Err(StoreError::Invalid(bad.error.clone()));
        }
        Ok(set.specs.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_map_to_json() {
        let item: HashMap<String, AttributeValue> = [
            ("conn_id".to_string(), AttributeValue::S("c".into())),
            ("enabled".to_string(), AttributeValue::Bool(true)),
            ("timeout".to_string(), AttributeValue::N("2.5".into())),
            ("n".to_string(), AttributeValue::N("7".into())),
            (
                "x-m".to_string(),
                AttributeValue::M([("k".to_string(), AttributeValue::Null(true))].into()),
            ),
            (
                "x-l".to_string(),
                AttributeValue::L(vec![AttributeValue::S("a".into())]),
            ),
        ]
        .into();
        let v = item_to_json(&item);
        assert_eq!(v["enabled"], true);
        assert_eq!(v["timeout"], 2.5);
        assert_eq!(v["n"], 7);
        assert_eq!(v["x-m"]["k"], Value::Null);
        assert_eq!(v["x-l"][0], "a");
    }
}

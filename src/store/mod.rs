//! Where connection specs come from: local files (the default) or lava's DynamoDB table.

pub mod dynamo;
pub mod local;

use crate::spec::connection::{ConnectionSpec, DockerSpec, InvalidSpec};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read connection specs from {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {message}")]
    Json { path: String, message: String },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
    #[error("DynamoDB table `{table}`: {message}")]
    Dynamo { table: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Every spec a store holds, the valid ones parsed and the invalid ones kept with their error so
/// one bad record never hides the others.
#[derive(Debug, Clone, Default)]
pub struct SpecSet {
    pub specs: Vec<ConnectionSpec>,
    pub invalid: Vec<InvalidSpec>,
}

impl SpecSet {
    pub fn docker(&self) -> impl Iterator<Item = &DockerSpec> {
        self.specs.iter().filter_map(|s| match s {
            ConnectionSpec::Docker(d) => Some(d),
            ConnectionSpec::Other { .. } => None,
        })
    }

    pub fn find(&self, conn_id: &str) -> Option<&ConnectionSpec> {
        self.specs.iter().find(|s| s.conn_id() == conn_id)
    }

    pub fn invalid_named(&self, conn_id: &str) -> Option<&InvalidSpec> {
        self.invalid
            .iter()
            .find(|i| i.conn_id.as_deref() == Some(conn_id))
    }

    /// Add a parsed record, turning a repeated conn_id into an invalid entry.
    pub(crate) fn push_record(&mut self, value: &serde_json::Value, origin: &str) {
        use crate::spec::connection::{host_hint, parse_connection};
        match parse_connection(value) {
            Ok(spec) => {
                if self.find(spec.conn_id()).is_some() {
                    self.invalid.push(InvalidSpec {
                        conn_id: Some(spec.conn_id().to_string()),
                        origin: origin.to_string(),
                        host_hint: host_hint(value),
                        error: format!(
                            "connection `{}` is defined more than once (again in {origin})",
                            spec.conn_id()
                        ),
                    });
                } else {
                    self.specs.push(spec);
                }
            }
            Err(e) => self.invalid.push(InvalidSpec {
                conn_id: value
                    .get("conn_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                origin: origin.to_string(),
                host_hint: host_hint(value),
                error: format!("{e} (in {origin})"),
            }),
        }
    }
}

/// A source of connection specs. The helper reads them all (host -> spec); the shim reads one.
#[allow(async_fn_in_trait)]
pub trait ConnectionStore {
    async fn load_all(&self) -> Result<SpecSet, StoreError>;

    /// Re-read a store that answers from a cached index; `None` when there is nothing to refresh.
    async fn refresh(&self) -> Result<Option<SpecSet>, StoreError> {
        Ok(None)
    }

    /// `load_all`, saying whether the answer came from a cached index (which may be stale,
    /// so a miss deserves one `refresh`).
    async fn load_all_cached(&self) -> Result<(SpecSet, bool), StoreError> {
        Ok((self.load_all().await?, false))
    }

    /// One spec by conn_id; an invalid record is an error, an absent one `None`.
    async fn get(&self, conn_id: &str) -> Result<Option<ConnectionSpec>, StoreError> {
        let set = self.load_all().await?;
        if let Some(s) = set.find(conn_id) {
            return Ok(Some(s.clone()));
        }
        if let Some(bad) = set.invalid_named(conn_id) {
            return Err(StoreError::Invalid(bad.error.clone()));
        }
        Ok(None)
    }
}

use crate::settings::ConnectionsSource;

/// The store a setting names.
#[derive(Debug, Clone)]
pub enum AnyStore {
    Local(local::LocalStore),
    Dynamo(dynamo::DynamoStore),
}

impl AnyStore {
    /// `cache` keeps the DynamoDB index; local files need none.
    pub fn open(source: &ConnectionsSource, cache: &crate::cache::Cache) -> AnyStore {
        match source {
            ConnectionsSource::File(p) => AnyStore::Local(local::LocalStore::file(p)),
            ConnectionsSource::Dir(p) => AnyStore::Local(local::LocalStore::dir(p)),
            ConnectionsSource::Dynamo { table } => {
                AnyStore::Dynamo(dynamo::DynamoStore::new(table.clone(), cache.clone()))
            }
        }
    }
}

impl ConnectionStore for AnyStore {
    async fn load_all(&self) -> Result<SpecSet, StoreError> {
        match self {
            AnyStore::Local(s) => s.load_all().await,
            AnyStore::Dynamo(s) => s.load_all().await,
        }
    }

    async fn refresh(&self) -> Result<Option<SpecSet>, StoreError> {
        match self {
            AnyStore::Local(s) => s.refresh().await,
            AnyStore::Dynamo(s) => s.refresh().await,
        }
    }

    async fn load_all_cached(&self) -> Result<(SpecSet, bool), StoreError> {
        match self {
            AnyStore::Local(s) => s.load_all_cached().await,
            AnyStore::Dynamo(s) => s.load_all_cached().await,
        }
    }

    async fn get(&self, conn_id: &str) -> Result<Option<ConnectionSpec>, StoreError> {
        match self {
            AnyStore::Local(s) => s.get(conn_id).await,
            AnyStore::Dynamo(s) => s.get(conn_id).await,
        }
    }
}

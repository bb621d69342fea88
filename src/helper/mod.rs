//! The credential-helper protocol (`get`, `store`, `erase`, `list`), `configure-docker` and the
//! kubelet credential provider.

pub mod configure;
pub mod kubelet;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cache::Cache;
use crate::credentials::{CredentialError, Credentials, Resolver};
use crate::registry;
use crate::settings::{Settings, SettingsError};
use crate::store::{AnyStore, ConnectionStore, SpecSet, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Configure(#[from] configure::ConfigureError),
    #[error("{0}")]
    Input(String),
}

impl HelperError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, HelperError::Credential(e) if e.is_not_found())
    }
}

fn log_invalid(set: &SpecSet) {
    for bad in &set.invalid {
        tracing::warn!(error = %bad.error, "skipping invalid connection spec");
    }
}

/// The `get` answer, in the protocol's field names.
#[derive(Serialize)]
pub struct GetAnswer<'a> {
    #[serde(rename = "ServerURL")]
    pub server_url: &'a str,
    #[serde(rename = "Username")]
    pub username: &'a str,
    #[serde(rename = "Secret")]
    pub secret: &'a str,
}

/// Everything a helper action needs, built once per process.
pub struct Context {
    pub settings: Settings,
    pub store: AnyStore,
    pub resolver: Resolver,
}

impl Context {
    pub fn from_env() -> Result<Context, HelperError> {
        let settings = Settings::from_env()?;
        let cache = Cache::new(settings.cache_dir.clone());
        let store = AnyStore::open(&settings.connections, &cache);
        let resolver = Resolver::new(settings.realm.clone(), cache);
        Ok(Context {
            settings,
            store,
            resolver,
        })
    }

    pub async fn specs(&self) -> Result<SpecSet, HelperError> {
        let set = self.store.load_all().await?;
        log_invalid(&set);
        Ok(set)
    }

    /// `get`: the credentials for a raw server string.
    pub async fn get(&self, server: &str) -> Result<Credentials, HelperError> {
        let server = server.trim();
        if server.is_empty() {
            return Err(HelperError::Input("no server URL on standard input".into()));
        }
        let (set, cached) = self.store.load_all_cached().await?;
        log_invalid(&set);
        match self.resolver.for_server(&set, server).await {
            // A spec added since the index was cached: look once more before not-found.
            Err(e) if e.is_not_found() && cached => match self.store.refresh().await? {
                Some(fresh) => Ok(self.resolver.for_server(&fresh, server).await?),
                None => Err(e.into()),
            },
            other => Ok(other?),
        }
    }

    /// `list`: every host the enabled docker specs resolve to, with the user name a `get` gives.
    pub async fn list(&self) -> Result<BTreeMap<String, String>, HelperError> {
        let set = self.specs().await?;
        let mut out = BTreeMap::new();
        for spec in set.docker().filter(|s| s.enabled) {
            match self.resolver.host_of(spec).await {
                Ok(host) => {
                    let user = match &spec.registry {
                        registry::RegistryTarget::Ecr(_) => "AWS".to_string(),
                        _ => spec.user.clone().unwrap_or_default(),
                    };
                    let key = registry::cred_helpers_keys(&host)
                        .into_iter()
                        .next()
                        .unwrap_or(host);
                    out.insert(key, user);
                }
                Err(e) => tracing::warn!(conn_id = %spec.conn_id, error = %e, "not listed"),
            }
        }
        Ok(out)
    }

    /// Hosts for `configure-docker --all`: every enabled docker spec's host.
    pub async fn all_hosts(&self) -> Result<Vec<String>, HelperError> {
        let set = self.specs().await?;
        let mut hosts = Vec::new();
        for spec in set.docker().filter(|s| s.enabled) {
            let host = self.resolver.host_of(spec).await?;
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        Ok(hosts)
    }
}

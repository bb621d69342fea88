//! Connection spec -> registry credentials: ECR tokens, SSM passwords, or anonymous.

use std::time::Duration;

use base64::Engine;

use crate::aws::{self, CallOptions};
use crate::cache::{now_secs, Cache, TokenEntry, TokenKey};
use crate::registry::{self, EcrAccount, EcrHost, RegistryTarget};
use crate::spec::connection::{DockerSpec, InvalidSpec};
use crate::store::{SpecSet, StoreError};

/// A secret that never shows up in Debug output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Ecr,
    Password,
    Anonymous,
}

/// What a registry is answered with.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
    pub kind: CredentialKind,
    /// Unix seconds the credential stops working (ECR tokens only).
    pub expires_at: Option<i64>,
    /// Seconds it may be reused without asking again (half an ECR token's remaining life).
    pub fresh_for: Option<i64>,
    pub conn_id: String,
}

impl Credentials {
    pub fn anonymous(conn_id: &str) -> Self {
        Credentials {
            username: String::new(),
            secret: Secret::default(),
            kind: CredentialKind::Anonymous,
            expires_at: None,
            fresh_for: None,
            conn_id: conn_id.to_string(),
        }
    }

    fn from_entry(e: &TokenEntry, conn_id: &str) -> Self {
        Credentials {
            username: e.username.clone(),
            secret: Secret::new(e.secret.clone()),
            kind: CredentialKind::Ecr,
            expires_at: Some(e.expires_at),
            fresh_for: Some(e.fresh_for(now_secs())),
            conn_id: conn_id.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The exact text clients treat as "no credentials, pull anonymously".
    #[error("credentials not found in native keychain")]
    NotFound { host: String },
    #[error("{host}: the only connection for this registry, `{conn_id}`, is disabled")]
    Disabled { host: String, conn_id: String },
    #[error("{host}: connections `{first}` and `{second}` both match; disable or remove one")]
    Ambiguous {
        host: String,
        first: String,
        second: String,
    },
    #[error("{0}")]
    InvalidSpec(String),
    #[error(transparent)]
    BadServer(#[from] registry::ServerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "connection `{conn_id}`: LAVA_REALM is not set; it is needed to check that the password \
         parameter `{param}` is under /lava/<REALM>/"
    )]
    NoRealm { conn_id: String, param: String },
    #[error(
        "connection `{conn_id}`: password parameter `{param}` is not under /lava/{realm}/; refused"
    )]
    OutOfScope {
        conn_id: String,
        param: String,
        realm: String,
    },
    #[error(
        "connection `{conn_id}`: SSM parameter `{param}` is a {kind}, not a SecureString; refused"
    )]
    NotSecure {
        conn_id: String,
        param: String,
        kind: String,
    },
    #[error("connection `{conn_id}`: {op}: {message}")]
    Aws {
        conn_id: String,
        op: &'static str,
        message: String,
    },
    #[error("connection `{conn_id}`: registry `{registry}` cannot serve host `{host}`")]
    WrongHost {
        conn_id: String,
        registry: String,
        host: String,
    },
}

impl CredentialError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, CredentialError::NotFound { .. })
    }
}

/// The outcome of matching a host against the specs.
#[derive(Debug, PartialEq)]
pub enum Match<'a> {
    Found(&'a DockerSpec),
    NotFound,
    Disabled(&'a DockerSpec),
    Ambiguous(&'a DockerSpec, &'a DockerSpec),
    Invalid(&'a InvalidSpec),
}

/// Does this spec serve this normalised host?
pub fn spec_serves(
    spec: &DockerSpec,
    host: &str,
    ecr: Option<&EcrHost>,
    current_account: Option<&str>,
) -> bool {
    match &spec.registry {
        RegistryTarget::DockerHub => host == registry::DOCKER_HUB,
        RegistryTarget::Host(h) => h == host,
        RegistryTarget::Ecr(EcrAccount::Id(a)) => ecr.is_some_and(|e| &e.account == a),
        RegistryTarget::Ecr(EcrAccount::Current) => {
            ecr.is_some_and(|e| Some(e.account.as_str()) == current_account)
        }
    }
}

/// True when matching `host` needs the current AWS account (an ECR host and an `ecr` spec).
pub fn needs_current_account(set: &SpecSet, host: &str) -> bool {
    registry::parse_ecr_host(host).is_some()
        && set
            .docker()
            .any(|s| s.registry == RegistryTarget::Ecr(EcrAccount::Current))
}

/// Match a normalised host against every docker spec.
pub fn match_host<'a>(set: &'a SpecSet, host: &str, current_account: Option<&str>) -> Match<'a> {
    let ecr = registry::parse_ecr_host(host);
    let serving: Vec<&DockerSpec> = set
        .docker()
        .filter(|s| spec_serves(s, host, ecr.as_ref(), current_account))
        .collect();
    let enabled: Vec<&DockerSpec> = serving.iter().copied().filter(|s| s.enabled).collect();
    match enabled.as_slice() {
        [one] => return Match::Found(one),
        [a, b, ..] => return Match::Ambiguous(a, b),
        [] => {}
    }
    if let Some(bad) = set
        .invalid
        .iter()
        .find(|i| i.host_hint.as_deref() == Some(host))
    {
        return Match::Invalid(bad);
    }
    match serving.first() {
        Some(d) => Match::Disabled(d),
        None => Match::NotFound,
    }
}

/// Resolves credentials, sharing one cache and realm across calls.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub realm: Option<String>,
    pub cache: Cache,
}

impl Resolver {
    pub fn new(realm: Option<String>, cache: Cache) -> Self {
        Resolver { realm, cache }
    }

    /// The account of the current AWS credentials: from the cache, else STS.
    pub async fn current_account(
        &self,
        conn_id: &str,
        timeout: Option<Duration>,
    ) -> Result<String, CredentialError> {
        if let Some(a) = self.cache.account(self.realm.as_deref()) {
            return Ok(a);
        }
        // Concurrent cold gets share one STS call, as they share one ECR call.
        let key = TokenKey::new(self.realm.as_deref(), "", "sts:caller-identity");
        let wait = timeout.unwrap_or(aws::DEFAULT_TIMEOUT) + Duration::from_secs(2);
        let _lock = self.cache.lock(&key, wait).await;
        if let Some(a) = self.cache.account(self.realm.as_deref()) {
            return Ok(a);
        }
        tracing::debug!("calling STS GetCallerIdentity");
        let sts = aws::sts(&CallOptions {
            timeout,
            ..Default::default()
        })
        .await;
        let out = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| CredentialError::Aws {
                conn_id: conn_id.to_string(),
                op: "STS GetCallerIdentity",
                message: aws::error_text(&e),
            })?;
        let account = out.account.ok_or_else(|| CredentialError::Aws {
            conn_id: conn_id.to_string(),
            op: "STS GetCallerIdentity",
            message: "no account in the answer".into(),
        })?;
        if let Err(e) = self.cache.write_account(self.realm.as_deref(), &account) {
            tracing::warn!(error = %e, "account id not cached");
        }
        Ok(account)
    }

    /// Find the spec for a normalised host, resolving the current account only when needed.
    pub async fn find_spec<'a>(
        &self,
        set: &'a SpecSet,
        host: &str,
    ) -> Result<&'a DockerSpec, CredentialError> {
        let current = if needs_current_account(set, host) {
            let spec = set
                .docker()
                .find(|s| s.registry == RegistryTarget::Ecr(EcrAccount::Current))
                .expect("needs_current_account saw one");
            match self.current_account(&spec.conn_id, spec.timeout()).await {
                Ok(a) => Some(a),
                // Only an enabled `ecr` spec makes this fatal; a disabled one can't answer anyway.
                Err(e)
                    if set.docker().any(|s| {
                        s.enabled && s.registry == RegistryTarget::Ecr(EcrAccount::Current)
                    }) =>
                {
                    return Err(e)
                }
                Err(_) => None,
            }
        } else {
            None
        };
        match match_host(set, host, current.as_deref()) {
            Match::Found(s) => Ok(s),
            Match::NotFound => Err(CredentialError::NotFound {
                host: host.to_string(),
            }),
            Match::Disabled(s) => Err(CredentialError::Disabled {
                host: host.to_string(),
                conn_id: s.conn_id.clone(),
            }),
            Match::Ambiguous(a, b) => Err(CredentialError::Ambiguous {
                host: host.to_string(),
                first: a.conn_id.clone(),
                second: b.conn_id.clone(),
            }),
            Match::Invalid(bad) => Err(CredentialError::InvalidSpec(bad.error.clone())),
        }
    }

    /// Credentials from one spec for one normalised host. `bypass_cache` forces a fresh ECR
    /// token (after the registry refused the cached one).
    pub async fn credentials(
        &self,
        spec: &DockerSpec,
        host: &str,
        bypass_cache: bool,
    ) -> Result<Credentials, CredentialError> {
        match &spec.registry {
            RegistryTarget::Ecr(_) => {
                let ecr =
                    registry::parse_ecr_host(host).ok_or_else(|| CredentialError::WrongHost {
                        conn_id: spec.conn_id.clone(),
                        registry: spec.registry_raw.clone().unwrap_or_default(),
                        host: host.to_string(),
                    })?;
                self.ecr_token(spec, host, &ecr, bypass_cache).await
            }
            _ if spec.is_private() => self.ssm_password(spec).await,
            _ => Ok(Credentials::anonymous(&spec.conn_id)),
        }
    }

    async fn ecr_token(
        &self,
        spec: &DockerSpec,
        host: &str,
        ecr: &EcrHost,
        bypass_cache: bool,
    ) -> Result<Credentials, CredentialError> {
        let key = TokenKey::new(self.realm.as_deref(), &spec.conn_id, host);
        if !bypass_cache {
            if let Some(t) = self.cache.fresh_token(&key) {
                tracing::debug!(host, conn_id = %spec.conn_id, "ECR token from cache");
                return Ok(Credentials::from_entry(&t, &spec.conn_id));
            }
        }
        let timeout = spec.timeout().unwrap_or(aws::DEFAULT_TIMEOUT);
        // Serialise refreshes across processes; whoever waited finds the fresh token.
        let _lock = self
            .cache
            .lock(&key, timeout + Duration::from_secs(2))
            .await;
        let stale = self.cache.read_token(&key);
        if !bypass_cache {
            if let Some(t) = stale.as_ref().filter(|t| t.fresh_at(now_secs())) {
                return Ok(Credentials::from_entry(t, &spec.conn_id));
            }
        }
        match self.fetch_ecr_token(spec, ecr, timeout).await {
            Ok(entry) => {
                if let Err(e) = self.cache.write_token(&key, &entry) {
                    tracing::warn!(error = %e, "ECR token not cached");
                }
                Ok(Credentials::from_entry(&entry, &spec.conn_id))
            }
            // A refresh that fails while the old token still works is not worth failing a pull.
            Err(e) => match stale.filter(|t| t.usable_at(now_secs()) && !bypass_cache) {
                Some(t) => {
                    tracing::warn!(error = %e, "ECR refresh failed; using the cached token");
                    Ok(Credentials::from_entry(&t, &spec.conn_id))
                }
                None => Err(e),
            },
        }
    }

    async fn fetch_ecr_token(
        &self,
        spec: &DockerSpec,
        ecr: &EcrHost,
        timeout: Duration,
    ) -> Result<TokenEntry, CredentialError> {
        let aws_err = |op, message: String| CredentialError::Aws {
            conn_id: spec.conn_id.clone(),
            op,
            message,
        };
        tracing::debug!(account = %ecr.account, region = %ecr.region, "calling ECR GetAuthorizationToken");
        let client = aws::ecr(&CallOptions {
            region: Some(ecr.region.clone()),
            timeout: Some(timeout),
            fips: ecr.fips,
            dual_stack: ecr.dual_stack,
        })
        .await;
        let requested_at = now_secs();
        // registryIds is deprecated (a token opens every registry the principal may read), but
        // naming the account keeps cross-account tokens explicit and is what lava does.
        #[allow(deprecated)]
        let request = client
            .get_authorization_token()
            .registry_ids(ecr.account.clone());
        let out = request
            .send()
            .await
            .map_err(|e| aws_err("ECR GetAuthorizationToken", aws::error_text(&e)))?;
        let data = out
            .authorization_data
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| aws_err("ECR GetAuthorizationToken", "no authorization data".into()))?;
        let token = data
            .authorization_token
            .ok_or_else(|| aws_err("ECR GetAuthorizationToken", "no token".into()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                aws_err(
                    "ECR GetAuthorizationToken",
                    "token is not base64 text".into(),
                )
            })?;
        let (username, secret) = decoded.split_once(':').ok_or_else(|| {
            aws_err(
                "ECR GetAuthorizationToken",
                "token is not user:password".into(),
            )
        })?;
        let expires_at = data
            .expires_at
            .map(|t| t.secs())
            .unwrap_or(requested_at + 12 * 3600);
        Ok(TokenEntry {
            username: username.to_string(),
            secret: secret.to_string(),
            requested_at,
            expires_at,
        })
    }

    async fn ssm_password(&self, spec: &DockerSpec) -> Result<Credentials, CredentialError> {
        let param = spec.password.clone().unwrap_or_default();
        let realm = self.realm.clone().ok_or_else(|| CredentialError::NoRealm {
            conn_id: spec.conn_id.clone(),
            param: param.clone(),
        })?;
        let prefix = format!("/lava/{realm}/");
        if !param.starts_with(&prefix) || param.len() == prefix.len() || param.contains("/../") {
            return Err(CredentialError::OutOfScope {
                conn_id: spec.conn_id.clone(),
                param,
                realm,
            });
        }
        tracing::debug!(param = %param, "calling SSM GetParameter");
        let client = aws::ssm(&CallOptions {
            timeout: spec.timeout(),
            ..Default::default()
        })
        .await;
        let out = client
            .get_parameter()
            .name(&param)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| CredentialError::Aws {
                conn_id: spec.conn_id.clone(),
                op: "SSM GetParameter",
                message: aws::error_text(&e),
            })?;
        let p = out.parameter.ok_or_else(|| CredentialError::Aws {
            conn_id: spec.conn_id.clone(),
            op: "SSM GetParameter",
            message: "no parameter in the answer".into(),
        })?;
        let kind = p
            .r#type
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "parameter of unknown type".into());
        if kind != "SecureString" {
            return Err(CredentialError::NotSecure {
                conn_id: spec.conn_id.clone(),
                param,
                kind,
            });
        }
        Ok(Credentials {
            username: spec.user.clone().unwrap_or_default(),
            secret: Secret::new(p.value.unwrap_or_default()),
            kind: CredentialKind::Password,
            expires_at: None,
            fresh_for: None,
            conn_id: spec.conn_id.clone(),
        })
    }

    /// The helper's `get`: raw server string -> credentials.
    pub async fn for_server(
        &self,
        set: &SpecSet,
        server: &str,
    ) -> Result<Credentials, CredentialError> {
        let host = registry::normalize_server(server)?;
        let spec = self.find_spec(set, &host).await?;
        self.credentials(spec, &host, false).await
    }

    /// The host a spec resolves to (for `list` and `configure-docker`); `ecr` needs the
    /// current account and the configured region.
    pub async fn host_of(&self, spec: &DockerSpec) -> Result<String, CredentialError> {
        match &spec.registry {
            RegistryTarget::DockerHub => Ok(registry::DOCKER_HUB.to_string()),
            RegistryTarget::Host(h) => Ok(h.clone()),
            RegistryTarget::Ecr(acct) => {
                let account = match acct {
                    EcrAccount::Id(a) => a.clone(),
                    EcrAccount::Current => {
                        self.current_account(&spec.conn_id, spec.timeout()).await?
                    }
                };
                let region = aws::configured_region(spec.timeout())
                    .await
                    .ok_or_else(|| CredentialError::Aws {
                        conn_id: spec.conn_id.clone(),
                        op: "region lookup",
                        message: "no AWS region configured (set AWS_REGION)".into(),
                    })?;
                Ok(registry::ecr_host_for(&account, &region))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(records: serde_json::Value) -> SpecSet {
        let mut s = SpecSet::default();
        for r in records.as_array().unwrap() {
            s.push_record(r, "test");
        }
        s
    }

    const ECR: &str = "111122223333.dkr.ecr.eu-west-1.amazonaws.com";

    #[test]
    fn matching_rules() {
        let s = set(json!([
            {"conn_id": "hub", "type": "docker", "enabled": true},
            {"conn_id": "ecr", "type": "docker", "enabled": true, "registry": "ecr"},
            {"conn_id": "other", "type": "docker", "enabled": true, "registry": "ecr:444455556666"},
            {"conn_id": "priv", "type": "docker", "enabled": true, "registry": "https://r.example:5000/",
             "user": "u", "password": "/lava/x/p"},
            {"conn_id": "off", "type": "docker", "enabled": false, "registry": "off.example"},
            {"conn_id": "dup1", "type": "docker", "enabled": true, "registry": "dup.example"},
            {"conn_id": "dup2", "type": "docker", "enabled": true, "registry": "dup.example"},
            {"conn_id": "bad", "type": "docker", "enabled": true, "registry": "bad.example", "tls": 3},
        ]));
        let id = |m: Match| match m {
            Match::Found(s) => s.conn_id.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(id(match_host(&s, "docker.io", None)), "hub");
        assert_eq!(id(match_host(&s, ECR, Some("111122223333"))), "ecr");
        assert_eq!(match_host(&s, ECR, Some("999999999999")), Match::NotFound);
        assert_eq!(
            id(match_host(
                &s,
                "444455556666.dkr.ecr.us-east-1.amazonaws.com",
                None
            )),
            "other"
        );
        assert_eq!(
            match_host(
                &s,
                "444455556666.dkr.ecr.us-east-1.amazonaws.com.evil.example",
                None
            ),
            Match::NotFound
        );
        assert_eq!(id(match_host(&s, "r.example:5000", None)), "priv");
        assert_eq!(match_host(&s, "r.example", None), Match::NotFound);
        assert!(
            matches!(match_host(&s, "off.example", None), Match::Disabled(d) if d.conn_id == "off")
        );
        assert!(
            matches!(match_host(&s, "dup.example", None), Match::Ambiguous(a, b)
            if a.conn_id == "dup1" && b.conn_id == "dup2")
        );
        assert!(
            matches!(match_host(&s, "bad.example", None), Match::Invalid(i)
            if i.error.contains("`tls`"))
        );
        assert!(needs_current_account(&s, ECR));
        assert!(!needs_current_account(&s, "docker.io"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let c = Credentials {
            username: "u".into(),
            secret: Secret::new("hunter2"),
            kind: CredentialKind::Password,
            expires_at: None,
            fresh_for: None,
            conn_id: "c".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn ssm_scope_is_checked_before_any_call() {
        let s = set(json!([
            {"conn_id": "p", "type": "docker", "enabled": true, "registry": "r.example",
             "user": "u", "password": "/lava/other/p"},
            {"conn_id": "q", "type": "docker", "enabled": true, "registry": "q.example",
             "user": "u", "password": "/lava/prod/../other/p"},
        ]));
        let r = Resolver::new(Some("prod".into()), Cache::new(None));
        for server in ["r.example", "q.example"] {
            let e = r.for_server(&s, server).await.unwrap_err();
            assert!(matches!(e, CredentialError::OutOfScope { .. }), "{e}");
        }
        let r = Resolver::new(None, Cache::new(None));
        let e = r.for_server(&s, "r.example").await.unwrap_err();
        assert!(matches!(e, CredentialError::NoRealm { .. }), "{e}");
        assert!(e.to_string().contains("LAVA_REALM"));
    }
}

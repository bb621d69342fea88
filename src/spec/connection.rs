//! The lava connection spec: the record lava keeps in its connections table.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::registry::{self, EcrAccount, RegistryTarget};

/// A validation error in one connection spec. Always names the conn_id (when known) and the field.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("connection `{conn_id}`: field `{field}`: {message}")]
pub struct SpecError {
    pub conn_id: String,
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(conn_id: &str, field: &str, message: impl Into<String>) -> Self {
        SpecError {
            conn_id: conn_id.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The fields every lava connection has, whatever its type.
#[derive(Debug, Clone, Deserialize)]
struct Common {
    conn_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    enabled: bool,
}

/// The docker connection record as lava stores it. Unknown fields are rejected (lava's schema
/// does the same); `x-*` / `X-*` fields are stripped before this is parsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DockerRecord {
    conn_id: String,
    #[serde(rename = "type")]
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    enabled: bool,
    description: Option<String>,
    owner: Option<String>,
    registry: Option<String>,
    user: Option<String>,
    password: Option<String>,
    email: Option<String>,
    server: Option<String>,
    tls: Option<bool>,
    timeout: Option<f64>,
}

/// A validated docker connection spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSpec {
    pub conn_id: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub owner: Option<String>,
    /// The `registry` field as written.
    pub registry_raw: Option<String>,
    /// What `registry` points at.
    pub registry: RegistryTarget,
    pub user: Option<String>,
    /// The SSM parameter name holding the password (never the password itself).
    pub password: Option<String>,
    pub email: Option<String>,
    pub server: Option<String>,
    pub tls: bool,
    /// Timeout for API calls made on behalf of this connection, in seconds.
    pub timeout: Option<f64>,
}

impl DockerSpec {
    /// True when the registry needs a user name and an SSM password.
    pub fn is_private(&self) -> bool {
        !matches!(self.registry, RegistryTarget::Ecr(_)) && self.user.is_some()
    }

    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.timeout.map(std::time::Duration::from_secs_f64)
    }
}

/// A connection spec of any type. Only docker specs are modelled in full; the others are kept
/// by id so that a lookup can say "that is not a docker connection".
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionSpec {
    Docker(DockerSpec),
    Other {
        conn_id: String,
        kind: String,
        enabled: bool,
    },
}

impl ConnectionSpec {
    pub fn conn_id(&self) -> &str {
        match self {
            ConnectionSpec::Docker(d) => &d.conn_id,
            ConnectionSpec::Other { conn_id, .. } => conn_id,
        }
    }
}

/// A spec that failed validation. It is kept so that a lookup that would have matched it can
/// report its error instead of a bare not-found, without hiding the valid specs.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidSpec {
    pub conn_id: Option<String>,
    /// Where the spec came from (a file path, a table name).
    pub origin: String,
    /// The host the spec's `registry` field names, when that much could be read.
    pub host_hint: Option<String>,
    pub error: String,
}

fn conn_id_of(value: &Value) -> String {
    value
        .get("conn_id")
        .and_then(Value::as_str)
        .unwrap_or("<no conn_id>")
        .to_string()
}

fn path_error(conn_id: &str, err: serde_path_to_error::Error<serde_json::Error>) -> SpecError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    // serde's message for unknown fields already names the field; keep "." for the record.
    let field = if path == "." || path.is_empty() {
        "<record>".to_string()
    } else {
        path
    };
    SpecError::new(conn_id, &field, strip_position(&inner.to_string()))
}

/// serde_json appends " at line 1 column 42", which means nothing for a record from DynamoDB.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Parse one connection record (already JSON) into a spec.
pub fn parse_connection(value: &Value) -> Result<ConnectionSpec, SpecError> {
    let conn_id = conn_id_of(value);
    let Value::Object(map) = value else {
        return Err(SpecError::new(
            &conn_id,
            "<record>",
            format!("expected a JSON object, found {}", json_kind(value)),
        ));
    };
    let stripped: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !(k.starts_with("x-") || k.starts_with("X-")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let stripped = Value::Object(stripped);

    let common: Common =
        serde_path_to_error::deserialize(&stripped).map_err(|e| path_error(&conn_id, e))?;
    if common.conn_id.trim().is_empty() {
        return Err(SpecError::new(&conn_id, "conn_id", "must not be empty"));
    }
    if common.kind != "docker" {
        return Ok(ConnectionSpec::Other {
            conn_id: common.conn_id,
            kind: common.kind,
            enabled: common.enabled,
        });
    }
    let rec: DockerRecord =
        serde_path_to_error::deserialize(&stripped).map_err(|e| path_error(&conn_id, e))?;
    validate_docker(rec).map(ConnectionSpec::Docker)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn non_empty(conn_id: &str, field: &str, v: Option<String>) -> Result<Option<String>, SpecError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(SpecError::new(conn_id, field, "must not be empty")),
        other => Ok(other),
    }
}

fn validate_docker(rec: DockerRecord) -> Result<DockerSpec, SpecError> {
    let id = rec.conn_id.clone();
    let registry_raw = non_empty(&id, "registry", rec.registry)?;
    let registry = match &registry_raw {
        None => RegistryTarget::DockerHub,
        Some(r) => parse_registry_field(r).map_err(|m| SpecError::new(&id, "registry", m))?,
    };
    let user = non_empty(&id, "user", rec.user)?;
    let password = non_empty(&id, "password", rec.password)?;
    if !matches!(registry, RegistryTarget::Ecr(_)) {
        match (&user, &password) {
            (Some(_), None) => {
                return Err(SpecError::new(
                    &id,
                    "password",
                    "is required when `user` is set (the name of an SSM parameter)",
                ))
            }
            (None, Some(_)) => {
                return Err(SpecError::new(
                    &id,
                    "user",
                    "is required when `password` is set",
                ))
            }
            _ => {}
        }
    }
    if let Some(t) = rec.timeout {
        if !(t.is_finite() && t > 0.0 && t <= 86_400.0) {
            return Err(SpecError::new(
                &id,
                "timeout",
                format!("must be a number of seconds between 0 and 86400, got {t}"),
            ));
        }
    }
    let server = non_empty(&id, "server", rec.server)?;
    Ok(DockerSpec {
        conn_id: rec.conn_id,
        enabled: rec.enabled,
        description: rec.description,
        owner: rec.owner,
        registry_raw,
        registry,
        user,
        password,
        email: rec.email,
        server,
        tls: rec.tls.unwrap_or(true),
        timeout: rec.timeout,
    })
}

/// `ecr`, `ecr:<12 digits>`, or a registry host / URL.
pub fn parse_registry_field(raw: &str) -> Result<RegistryTarget, String> {
    let r = raw.trim();
    if r.eq_ignore_ascii_case("ecr") {
        return Ok(RegistryTarget::Ecr(EcrAccount::Current));
    }
    if let Some(acct) = r.strip_prefix("ecr:").or_else(|| r.strip_prefix("ECR:")) {
        if acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(RegistryTarget::Ecr(EcrAccount::Id(acct.to_string())));
        }
        return Err(format!("`{r}` is not `ecr` or `ecr:<12-digit account id>`"));
    }
    let host = registry::normalize_server(r).map_err(|e| e.to_string())?;
    Ok(registry::target_for_host(&host))
}

/// Best-effort: the host an invalid record's `registry` names, so errors can be matched to a lookup.
pub fn host_hint(value: &Value) -> Option<String> {
    match value.get("registry") {
        None | Some(Value::Null) => Some(registry::DOCKER_HUB.to_string()),
        Some(Value::String(s)) => match parse_registry_field(s).ok()? {
            RegistryTarget::DockerHub => Some(registry::DOCKER_HUB.to_string()),
            RegistryTarget::Host(h) => Some(h),
            RegistryTarget::Ecr(_) => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docker(v: Value) -> Result<DockerSpec, SpecError> {
        match parse_connection(&v)? {
            ConnectionSpec::Docker(d) => Ok(d),
            other => panic!("not docker: {other:?}"),
        }
    }

    #[test]
    fn minimal_public_spec_defaults() {
        let d = docker(json!({"conn_id": "docker/public", "type": "docker"})).unwrap();
        assert!(!d.enabled, "enabled defaults to false");
        assert!(d.tls, "tls defaults to true");
        assert_eq!(d.registry, RegistryTarget::DockerHub);
        assert!(!d.is_private());
    }

    #[test]
    fn x_fields_are_ignored_and_unknown_fields_named() {
        docker(json!({"conn_id": "a", "type": "docker", "x-note": 1, "X-Other": "y"})).unwrap();
        let e = docker(json!({"conn_id": "a", "type": "docker", "regsitry": "ecr"})).unwrap_err();
        assert_eq!(e.conn_id, "a");
        assert!(e.to_string().contains("regsitry"), "{e}");
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = docker(json!({"conn_id": "a", "type": "docker", "tls": "yes"})).unwrap_err();
        assert_eq!(e.field, "tls");
        let e = docker(json!({"conn_id": "a", "type": "docker", "enabled": "true"})).unwrap_err();
        assert_eq!(e.field, "enabled");
        let e = docker(json!({"conn_id": "a", "type": "docker", "timeout": -1})).unwrap_err();
        assert_eq!(e.field, "timeout");
        assert!(e.to_string().contains("-1"));
    }

    #[test]
    fn registry_forms() {
        let d = docker(json!({"conn_id": "e", "type": "docker", "registry": "ecr"})).unwrap();
        assert_eq!(d.registry, RegistryTarget::Ecr(EcrAccount::Current));
        let d = docker(json!({"conn_id": "e", "type": "docker", "registry": "ecr:123456789012"}))
            .unwrap();
        assert_eq!(
            d.registry,
            RegistryTarget::Ecr(EcrAccount::Id("123456789012".into()))
        );
        let e =
            docker(json!({"conn_id": "e", "type": "docker", "registry": "ecr:1234"})).unwrap_err();
        assert_eq!(e.field, "registry");
        assert!(e.to_string().contains("ecr:1234"), "{e}");
        let d = docker(
            json!({"conn_id": "g", "type": "docker", "registry": "https://GHCR.io/v2/",
            "user": "u", "password": "/lava/r/p"}),
        )
        .unwrap();
        assert_eq!(d.registry, RegistryTarget::Host("ghcr.io".into()));
        assert!(d.is_private());
        let d = docker(json!({"conn_id": "h", "type": "docker", "registry": "index.docker.io"}))
            .unwrap();
        assert_eq!(d.registry, RegistryTarget::DockerHub);
    }

    #[test]
    fn user_and_password_go_together() {
        let e =
            docker(json!({"conn_id": "p", "type": "docker", "registry": "r.example", "user": "u"}))
                .unwrap_err();
        assert_eq!(e.field, "password");
        let e = docker(
            json!({"conn_id": "p", "type": "docker", "registry": "r.example", "password": "/lava/x"}),
        )
        .unwrap_err();
        assert_eq!(e.field, "user");
    }

    #[test]
    fn other_types_are_kept_by_id() {
        let s =
            parse_connection(&json!({"conn_id": "pg", "type": "postgres", "host": "x"})).unwrap();
        assert!(matches!(s, ConnectionSpec::Other { ref kind, .. } if kind == "postgres"));
        let e = parse_connection(&json!({"type": "docker"})).unwrap_err();
        assert!(e.to_string().contains("conn_id"), "{e}");
    }
}

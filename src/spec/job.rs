//! The request the lava worker hands `lava-docker-run`: the job, the realm, where to work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::duration::{parse_duration, DEFAULT_TIMEOUT};
use super::image::ImageRef;

/// A request that cannot be run. Names the field (a dotted path) and says what is wrong.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("`{field}`: {message}")]
pub struct RequestError {
    pub field: String,
    pub message: String,
}

impl RequestError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The job's `parameters`: exactly the keys lava allows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    pub args: Option<Vec<Value>>,
    pub command: Option<String>,
    pub connections: Option<BTreeMap<String, String>>,
    pub docker: Option<String>,
    pub env: Option<Map<String, Value>>,
    pub host_config: Option<Map<String, Value>>,
    pub jinja: Option<bool>,
    pub timeout: Option<Value>,
    pub vars: Option<Map<String, Value>>,
}

/// The validated request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The job spec as given (rendered as `job`, augmented).
    pub job: Map<String, Value>,
    pub job_id: String,
    pub run_id: String,
    pub realm_name: String,
    pub worker: String,
    pub owner: String,
    pub payload: ImageRef,
    pub parameters: Parameters,
    pub timeout: Duration,
    pub jinja: bool,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub globals: Map<String, Value>,
    pub state: Map<String, Value>,
    pub ts_start: Option<String>,
    /// The realm record.
    pub realm: Map<String, Value>,
    pub tmpdir: Option<PathBuf>,
    pub s3tmp: Option<String>,
    pub dev: bool,
    pub connectors: BTreeMap<String, PathBuf>,
    /// The docker conn_id: `parameters.docker`, else the realm's `docker`.
    pub docker_conn_id: String,
}

fn get_str(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Option<String>, RequestError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RequestError::new(
            format!("{prefix}{key}"),
            format!("expected a string, got {other}"),
        )),
    }
}

fn req_str(map: &Map<String, Value>, key: &str, prefix: &str) -> Result<String, RequestError> {
    get_str(map, key, prefix)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| RequestError::new(format!("{prefix}{key}"), "is required"))
}

fn get_map(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<Map<String, Value>, RequestError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(RequestError::new(
            format!("{prefix}{key}"),
            format!("expected an object, got {other}"),
        )),
    }
}

/// A scalar as the string lava would pass (numbers and booleans the way Python's str() does).
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

const ALLOWED_TOP: &[&str] = &["job", "realm", "tmpdir", "s3tmp", "dev", "connectors"];

impl Request {
    /// Validate a request document. `dev_flag` is the command line's `--dev`.
    pub fn from_value(doc: &Value, dev_flag: bool) -> Result<Request, RequestError> {
        let Value::Object(top) = doc else {
            return Err(RequestError::new("<request>", "expected a JSON object"));
        };
        let mut unknown: Vec<&str> = top
            .keys()
            .map(String::as_str)
            .filter(|k| !ALLOWED_TOP.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            return Err(RequestError::new(
                "<request>",
                format!("unknown field(s): {}", unknown.join(", ")),
            ));
        }
        let job = match top.get("job") {
            Some(Value::Object(j)) => j.clone(),
            Some(other) => {
                return Err(RequestError::new(
                    "job",
                    format!("expected an object, got {other}"),
                ))
            }
            None => return Err(RequestError::new("job", "is required")),
        };
        let realm = get_map(top, "realm", "")?;

        let job_id = req_str(&job, "job_id", "job.")?;
        let run_id = req_str(&job, "run_id", "job.")?;
        if let Some(t) = get_str(&job, "type", "job.")? {
            if t != "docker" {
                return Err(RequestError::new(
                    "job.type",
                    format!("`{t}` is not `docker`"),
                ));
            }
        }
        let payload_raw = req_str(&job, "payload", "job.")?;
        let payload = ImageRef::parse(&payload_raw)
            .map_err(|e| RequestError::new("job.payload", e.to_string()))?;

        let params_value = job.get("parameters").cloned().unwrap_or(Value::Null);
        let parameters: Parameters = if params_value.is_null() {
            Parameters::default()
        } else {
            if !params_value.is_object() {
                return Err(RequestError::new("job.parameters", "expected an object"));
            }
            serde_path_to_error::deserialize(&params_value).map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                let field = if path == "." {
                    "job.parameters".to_string()
                } else {
                    format!("job.parameters.{path}")
                };
                RequestError::new(field, msg)
            })?
        };

        let timeout = match &parameters.timeout {
            None | Some(Value::Null) => DEFAULT_TIMEOUT,
            Some(v) => {
                parse_duration(v).map_err(|m| RequestError::new("job.parameters.timeout", m))?
            }
        };
        let args = parameters
            .args
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| {
                scalar_string(v).ok_or_else(|| {
                    RequestError::new(
                        format!("job.parameters.args[{i}]"),
                        format!("expected a string or number, got {v}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let env = parameters
            .env
            .iter()
            .flatten()
            .map(|(k, v)| {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(RequestError::new(
                        format!("job.parameters.env.{k}"),
                        "is not a valid environment variable name",
                    ));
                }
                scalar_string(v).map(|s| (k.clone(), s)).ok_or_else(|| {
                    RequestError::new(
                        format!("job.parameters.env.{k}"),
                        format!("expected a string or number, got {v}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (label, conn) in parameters.connections.iter().flatten() {
            let ok = !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !ok {
                return Err(RequestError::new(
                    format!("job.parameters.connections.{label}"),
                    "connection labels must match \\w+",
                ));
            }
            if conn.trim().is_empty() {
                return Err(RequestError::new(
                    format!("job.parameters.connections.{label}"),
                    "the conn_id must not be empty",
                ));
            }
        }
        if let Some(cmd) = &parameters.command {
            if shlex::split(cmd).is_none() {
                return Err(RequestError::new(
                    "job.parameters.command",
                    format!("`{cmd}` cannot be split like a shell command (unbalanced quotes?)"),
                ));
            }
        }

        let docker_conn_id = match parameters.docker.clone().filter(|d| !d.trim().is_empty()) {
            Some(d) => d,
            None => get_str(&realm, "docker", "realm.")?
                .filter(|d| !d.trim().is_empty())
                .ok_or_else(|| {
                    RequestError::new(
                        "job.parameters.docker",
                        "no docker connection: set job parameters.docker or the realm's docker",
                    )
                })?,
        };

        let tmpdir = match top.get("tmpdir") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let p = PathBuf::from(s);
                if !p.is_absolute() {
                    return Err(RequestError::new(
                        "tmpdir",
                        format!("`{s}` is not an absolute path"),
                    ));
                }
                if !p.is_dir() {
                    return Err(RequestError::new(
                        "tmpdir",
                        format!("`{s}` is not a directory"),
                    ));
                }
                Some(p)
            }
            Some(other) => {
                return Err(RequestError::new(
                    "tmpdir",
                    format!("expected a string, got {other}"),
                ))
            }
        };
        let s3tmp = get_str(top, "s3tmp", "")?.filter(|s| !s.is_empty());
        if let Some(s) = &s3tmp {
            let ok = s
                .strip_prefix("s3://")
                .is_some_and(|rest| rest.split('/').next().is_some_and(|b| !b.is_empty()));
            if !ok {
                return Err(RequestError::new(
                    "s3tmp",
                    format!("`{s}` is not an s3://bucket/prefix URI"),
                ));
            }
        }
        let dev = match top.get("dev") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(RequestError::new(
                    "dev",
                    format!("expected a boolean, got {other}"),
                ))
            }
        } || dev_flag;

        let mut connectors = BTreeMap::new();
        for (label, path) in get_map(top, "connectors", "")? {
            let Value::String(p) = path else {
                return Err(RequestError::new(
                    format!("connectors.{label}"),
                    "expected a path string",
                ));
            };
            connectors.insert(label, PathBuf::from(p));
        }

        let realm_name = get_str(&job, "realm", "job.")?
            .or(get_str(&realm, "realm", "realm.")?)
            .unwrap_or_default();
        Ok(Request {
            job_id,
            run_id,
            realm_name,
            worker: get_str(&job, "worker", "job.")?.unwrap_or_default(),
            owner: get_str(&job, "owner", "job.")?.unwrap_or_default(),
            payload,
            jinja: parameters.jinja.unwrap_or(true),
            timeout,
            args,
            env,
            globals: get_map(&job, "globals", "job.")?,
            state: get_map(&job, "state", "job.")?,
            ts_start: get_str(&job, "ts_start", "job.")?,
            parameters,
            job,
            realm,
            tmpdir,
            s3tmp,
            dev,
            connectors,
            docker_conn_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "job": {"job_id": "j", "run_id": "r", "payload": "lava/x", "type": "docker",
                    "parameters": {"docker": "docker/local"}},
            "realm": {"realm": "dev"}
        })
    }

    fn err(mutate: impl FnOnce(&mut Value)) -> RequestError {
        let mut v = base();
        mutate(&mut v);
        Request::from_value(&v, false).unwrap_err()
    }

    #[test]
    fn defaults() {
        let r = Request::from_value(&base(), false).unwrap();
        assert_eq!(r.timeout, DEFAULT_TIMEOUT);
        assert!(r.jinja);
        assert_eq!(r.docker_conn_id, "docker/local");
        assert_eq!(r.realm_name, "dev");
        assert_eq!(r.payload.reference(), "lava/x:latest");
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(
            err(|v| v["job"]["parameters"]["bogus"] = json!(1)).field,
            "job.parameters.bogus"
        );
        assert!(err(|v| v["job"]["parameters"]["bogus"] = json!(1))
            .message
            .contains("bogus"));
        assert_eq!(
            err(|v| v["job"]["parameters"]["timeout"] = json!("10x")).field,
            "job.parameters.timeout"
        );
        assert_eq!(
            err(|v| v["job"]["parameters"]["args"] = json!(["a", {"b": 1}])).field,
            "job.parameters.args[1]"
        );
        assert_eq!(
            err(|v| v["job"]["parameters"]["env"] = json!({"A": [1]})).field,
            "job.parameters.env.A"
        );
        assert_eq!(
            err(|v| v["job"]["parameters"]["connections"] = json!({"bad-label": "c"})).field,
            "job.parameters.connections.bad-label"
        );
        assert_eq!(
            err(|v| v["job"]["parameters"]["command"] = json!("echo 'unbalanced")).field,
            "job.parameters.command"
        );
        assert_eq!(
            err(|v| v["job"]["parameters"]["jinja"] = json!("no")).field,
            "job.parameters.jinja"
        );
        assert_eq!(
            err(|v| v["job"]["payload"] = json!("Bad/Image")).field,
            "job.payload"
        );
        assert_eq!(err(|v| v["job"]["type"] = json!("exe")).field, "job.type");
        assert_eq!(
            err(|v| {
                v["job"].as_object_mut().unwrap().remove("run_id");
            })
            .field,
            "job.run_id"
        );
        assert_eq!(
            err(|v| {
                v["job"]["parameters"]
                    .as_object_mut()
                    .unwrap()
                    .remove("docker");
            })
            .field,
            "job.parameters.docker"
        );
        assert_eq!(err(|v| v["tmpdir"] = json!("relative/dir")).field, "tmpdir");
        assert_eq!(err(|v| v["s3tmp"] = json!("http://x")).field, "s3tmp");
        assert_eq!(err(|v| v["extra"] = json!(1)).field, "<request>");
    }

    #[test]
    fn realm_docker_is_the_fallback_and_numbers_become_strings() {
        let mut v = base();
        v["job"]["parameters"] = json!({"args": [1, 2.5, "x"], "env": {"N": 3}});
        v["realm"]["docker"] = json!("docker/realm");
        let r = Request::from_value(&v, false).unwrap();
        assert_eq!(r.docker_conn_id, "docker/realm");
        assert_eq!(r.args, vec!["1", "2.5", "x"]);
        assert_eq!(r.env, vec![("N".to_string(), "3".to_string())]);
    }
}

//! The container a job runs in: command, environment, identity, labels, mounts, host_config.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig};
use serde_json::Value;

use super::host_config::{self, Converted, HostConfigError};
use super::render::{RenderError, Renderer};
use crate::spec::job::{Request, RequestError};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    HostConfig(#[from] HostConfigError),
}

/// An ordered environment where a later setting replaces an earlier one.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EnvList(Vec<(String, String)>);

impl EnvList {
    pub fn set(&mut self, k: impl Into<String>, v: impl Into<String>) {
        let k = k.into();
        self.0.retain(|(n, _)| *n != k);
        self.0.push((k, v.into()));
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    pub fn to_docker(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// Proxy settings from the docker client config (`proxies.default`), as docker run applies them.
pub fn docker_proxies() -> Vec<(String, String)> {
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => Path::new(&d).join("config.json"),
        None => match dirs::home_dir() {
            Some(h) => h.join(".docker/config.json"),
            None => return Vec::new(),
        },
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, var) in [
        ("httpProxy", "http_proxy"),
        ("httpsProxy", "https_proxy"),
        ("ftpProxy", "ftp_proxy"),
        ("noProxy", "no_proxy"),
        ("allProxy", "all_proxy"),
    ] {
        if let Some(p) = v["proxies"]["default"][key]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            out.push((var.to_string(), p.to_string()));
            out.push((var.to_uppercase(), p.to_string()));
        }
    }
    out
}

/// Who the shim runs as: the container's default user and group.
#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

impl Identity {
    pub fn current() -> Identity {
        // SAFETY: geteuid/getegid cannot fail and touch no memory.
        unsafe {
            Identity {
                uid: libc::geteuid(),
                gid: libc::getegid(),
            }
        }
    }
}

/// Inputs that do not come from the request.
pub struct Inputs<'a> {
    pub tmpdir: &'a Path,
    pub identity: Identity,
    pub shim_env: Vec<(String, String)>,
    pub proxies: Vec<(String, String)>,
    pub image: String,
    pub name: String,
    pub extra_labels: Vec<(String, String)>,
}

/// The command: shell-split `command`, then `args`, each rendered unless `jinja` is false.
pub fn command(req: &Request, r: &Renderer) -> Result<Option<Vec<String>>, BuildError> {
    let Some(cmd) = &req.parameters.command else {
        return Ok(None);
    };
    let parts = shlex::split(cmd).ok_or_else(|| {
        RequestError::new(
            "job.parameters.command",
            format!("`{cmd}` cannot be shell-split"),
        )
    })?;
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        out.push(if req.jinja {
            r.render(&format!("job.parameters.command[{i}]"), p)?
        } else {
            p.clone()
        });
    }
    for (i, a) in req.args.iter().enumerate() {
        out.push(if req.jinja {
            r.render(&format!("job.parameters.args[{i}]"), a)?
        } else {
            a.clone()
        });
    }
    Ok(Some(out))
}

fn hostname_default(req: &Request) -> String {
    let mut h: String = format!("lava-{}-{}-{}", req.realm_name, req.worker, req.run_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // A Linux host name is at most 64 bytes; docker refuses longer ones.
    h.truncate(63);
    h.trim_end_matches(['-', '.']).to_string()
}

/// Build the environment (lowest to highest precedence, as lava does).
pub fn environment(req: &Request, r: &Renderer, inp: &Inputs) -> Result<EnvList, BuildError> {
    let mut env = EnvList::default();
    for (k, v) in &inp.shim_env {
        if k.starts_with("LAVA_") {
            env.set(k, v);
        }
    }
    for (k, v) in &inp.proxies {
        env.set(k, v);
    }
    for (k, v) in &req.env {
        let v = if req.jinja {
            r.render(&format!("job.parameters.env.{k}"), v)?
        } else {
            v.clone()
        };
        env.set(k, v);
    }
    for (label, conn_id) in req.parameters.connections.iter().flatten() {
        let path = req.connectors.get(label).ok_or_else(|| {
            RequestError::new(
                format!("job.parameters.connections.{label}"),
                "no connector executable for this label in the request's `connectors`",
            )
        })?;
        let inside = path.is_absolute()
            && path.starts_with(inp.tmpdir)
            && !path
                .components()
                .any(|c| c == std::path::Component::ParentDir);
        if !inside {
            return Err(RequestError::new(
                format!("connectors.{label}"),
                format!(
                    "`{}` is not inside tmpdir {}",
                    path.display(),
                    inp.tmpdir.display()
                ),
            )
            .into());
        }
        let up = label.to_uppercase();
        env.set(format!("LAVA_CONNID_{up}"), conn_id);
        env.set(format!("LAVA_CONN_{up}"), path.display().to_string());
    }
    if let Some(s) = &req.s3tmp {
        env.set("LAVA_S3_TMP", s);
    }
    if let Some(p) = req.realm.get("s3_payloads").and_then(Value::as_str) {
        let payload = req
            .job
            .get("payload")
            .and_then(Value::as_str)
            .unwrap_or_default();
        env.set(
            "LAVA_S3_PAYLOAD",
            format!("{}/{payload}", p.trim_end_matches('/')),
        );
    }
    env.set("LAVA_TMP", inp.tmpdir.display().to_string());
    env.set("LAVA_REALM", &req.realm_name);
    env.set("LAVA_WORKER", &req.worker);
    env.set("LAVA_OWNER", &req.owner);
    env.set("LAVA_JOB_ID", &req.job_id);
    env.set("LAVA_RUN_ID", &req.run_id);
    if let Some(k) = req.realm.get("s3_key").and_then(Value::as_str) {
        env.set("LAVA_S3_KEY", k);
    }
    Ok(env)
}

/// Everything `POST /containers/create` needs.
pub fn build(req: &Request, r: &Renderer, inp: &Inputs) -> Result<ContainerCreateBody, BuildError> {
    let hc: Converted =
        host_config::convert(&req.parameters.host_config.clone().unwrap_or_default())?;
    let cmd = command(req, r)?;
    let env = environment(req, r, inp)?;
    let tmp = inp.tmpdir.display().to_string();
    let mut labels: HashMap<String, String> = [
        ("lava.realm", &req.realm_name),
        ("lava.worker", &req.worker),
        ("lava.owner", &req.owner),
        ("lava.job_id", &req.job_id),
        ("lava.run_id", &req.run_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(inp.extra_labels.iter().cloned());

    let host = HostConfig {
        binds: Some(vec![format!("{tmp}:{tmp}:rw")]),
        group_add: hc
            .group_add
            .clone()
            .resolve(|| Some(vec![inp.identity.gid.to_string()])),
        ..hc.host.clone()
    };
    Ok(ContainerCreateBody {
        image: Some(inp.image.clone()),
        cmd,
        env: Some(env.to_docker()),
        labels: Some(labels),
        hostname: hc.hostname.clone().resolve(|| Some(hostname_default(req))),
        domainname: hc.domainname.clone(),
        user: hc
            .user
            .clone()
            .resolve(|| Some(inp.identity.uid.to_string())),
        working_dir: hc.working_dir.clone().resolve(|| Some(tmp.clone())),
        network_disabled: hc.network_disabled,
        exposed_ports: hc.exposed_ports.clone(),
        host_config: Some(host),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::render::{start_time, Renderer};
    use serde_json::json;

    fn setup(params: Value) -> (Request, Renderer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let doc = json!({
            "job": {"job_id": "j1", "run_id": "r1", "payload": "lava/x:1", "worker": "w1", "owner": "o@x",
                    "parameters": params},
            "realm": {"realm": "dev", "s3_payloads": "s3://p/payloads/", "s3_key": "alias/k", "docker": "d"},
            "tmpdir": dir.path(),
            "s3tmp": "s3://t/tmp/j1/r1",
            "connectors": {"db": dir.path().join("conn-db").display().to_string()}
        });
        let req = Request::from_value(&doc, false).unwrap();
        let r = Renderer::new(&req, start_time(None).unwrap());
        (req, r, dir)
    }

    fn inputs(dir: &Path) -> Inputs<'_> {
        Inputs {
            tmpdir: dir,
            identity: Identity {
                uid: 1234,
                gid: 5678,
            },
            shim_env: vec![
                ("LAVA_EXTRA".into(), "shim".into()),
                ("LAVA_REALM".into(), "shim".into()),
                ("HOME".into(), "/root".into()),
            ],
            proxies: vec![("http_proxy".into(), "http://p".into())],
            image: "lava/x:1".into(),
            name: "lava-test".into(),
            extra_labels: vec![],
        }
    }

    #[test]
    fn defaults_and_precedence() {
        let (req, r, dir) = setup(json!({
            "command": "/bin/sh -c 'echo {{ vars.word }}'", "args": [7],
            "env": {"LAVA_REALM": "job-tries", "http_proxy": "http://job", "A": "{{ vars.word }}"},
            "vars": {"word": "hi"}, "connections": {"db": "pg/main"}
        }));
        let body = build(&req, &r, &inputs(dir.path())).unwrap();
        assert_eq!(body.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi", "7"]);
        let env = body.env.unwrap();
        let get = |k: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        assert_eq!(
            get("LAVA_REALM").as_deref(),
            Some("dev"),
            "lava's own variables win"
        );
        assert_eq!(
            get("http_proxy").as_deref(),
            Some("http://job"),
            "the job's env beats proxies"
        );
        assert_eq!(get("LAVA_EXTRA").as_deref(), Some("shim"));
        assert_eq!(get("HOME"), None, "only LAVA_* of the shim's environment");
        assert_eq!(get("A").as_deref(), Some("hi"));
        assert_eq!(
            get("LAVA_S3_PAYLOAD").as_deref(),
            Some("s3://p/payloads/lava/x:1")
        );
        assert_eq!(get("LAVA_S3_KEY").as_deref(), Some("alias/k"));
        assert_eq!(get("LAVA_CONNID_DB").as_deref(), Some("pg/main"));
        assert_eq!(get("LAVA_TMP").unwrap(), dir.path().display().to_string());
        assert_eq!(body.user.as_deref(), Some("1234"));
        assert_eq!(
            body.host_config.as_ref().unwrap().group_add,
            Some(vec!["5678".to_string()])
        );
        assert_eq!(body.hostname.as_deref(), Some("lava-dev-w1-r1"));
        assert_eq!(body.working_dir.unwrap(), dir.path().display().to_string());
        assert_eq!(body.labels.unwrap()["lava.job_id"], "j1");
    }

    #[test]
    fn jinja_false_keeps_env_unrendered() {
        let (req, r, dir) =
            setup(json!({"jinja": false, "command": "echo {{ x }}", "env": {"A": "{{ y }}"}}));
        let body = build(&req, &r, &inputs(dir.path())).unwrap();
        assert_eq!(body.cmd.unwrap(), vec!["echo", "{{", "x", "}}"]);
        assert!(body.env.unwrap().contains(&"A={{ y }}".to_string()));
    }

    #[test]
    fn connector_rules_and_template_errors() {
        let (req, r, dir) = setup(json!({"connections": {"other": "c"}}));
        let e = build(&req, &r, &inputs(dir.path())).unwrap_err();
        assert!(
            e.to_string().contains("job.parameters.connections.other"),
            "{e}"
        );
        let (req, r, _dir) = setup(json!({"connections": {"db": "c"}}));
        let elsewhere = tempfile::tempdir().unwrap();
        let e = build(&req, &r, &inputs(elsewhere.path())).unwrap_err();
        assert!(e.to_string().contains("connectors.db"), "{e}");
        let (req, r, dir) = setup(json!({"command": "echo", "args": ["ok", "{{ broken"]}));
        let e = build(&req, &r, &inputs(dir.path())).unwrap_err();
        assert!(e.to_string().contains("job.parameters.args[1]"), "{e}");
        let (req, r, dir) = setup(json!({"env": {"K": "{% if %}"}}));
        let e = build(&req, &r, &inputs(dir.path())).unwrap_err();
        assert!(e.to_string().contains("job.parameters.env.K"), "{e}");
    }

    #[test]
    fn host_config_overrides_and_nulls() {
        let (req, r, dir) = setup(
            json!({"host_config": {"user": "0:0", "group_add": null, "hostname": "h", "working_dir": "/"}}),
        );
        let body = build(&req, &r, &inputs(dir.path())).unwrap();
        assert_eq!(body.user.as_deref(), Some("0:0"));
        assert_eq!(body.host_config.unwrap().group_add, None);
        assert_eq!(body.hostname.as_deref(), Some("h"));
        assert_eq!(body.working_dir.as_deref(), Some("/"));
    }
}

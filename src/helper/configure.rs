//! `configure-docker`: add `credHelpers` entries for lava's registries to a docker config,
//! keeping every other key, written atomically.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::registry;

pub const HELPER_SUFFIX: &str = "lava";
pub const HELPER_BINARY: &str = "docker-credential-lava";

#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    #[error("no docker config location: HOME is not set; pass --config PATH or set DOCKER_CONFIG")]
    NoLocation,
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON ({message}); fix or move it first, nothing was changed")]
    BadJson { path: String, message: String },
    #[error("{path}: `{key}` must be a JSON object; nothing was changed")]
    BadShape { path: String, key: String },
    #[error(transparent)]
    BadRegistry(#[from] registry::ServerError),
    #[error("no registries to configure: no enabled docker connection, and no --registries")]
    Nothing,
}

/// `--config`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path(explicit: Option<&Path>) -> Result<PathBuf, ConfigureError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
        .ok_or(ConfigureError::NoLocation)
}

/// The credHelpers keys for hosts named on the command line (normalised like a `get`).
pub fn keys_for_registries(names: &[String]) -> Result<Vec<String>, ConfigureError> {
    let mut keys = Vec::new();
    for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let host = registry::normalize_server(n)?;
        for k in registry::cred_helpers_keys(&host) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    Ok(keys)
}

/// What changed.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub added: Vec<String>,
    /// Keys that named another helper before (old helper given).
    pub replaced: Vec<(String, String)>,
    pub unchanged: Vec<String>,
}

/// Add `"<key>": "lava"` under credHelpers for each key; create the file if absent.
pub fn add_cred_helpers(path: &Path, keys: &[String]) -> Result<Outcome, ConfigureError> {
    let shown = path.display().to_string();
    let io = |source| ConfigureError::Io {
        path: shown.clone(),
        source,
    };
    let (mut doc, mode) = match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => (Map::new(), None),
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| ConfigureError::BadJson {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            let Value::Object(m) = v else {
                return Err(ConfigureError::BadShape {
                    path: shown,
                    key: "<top level>".into(),
                });
            };
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o7777;
            (m, Some(mode))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Map::new(), None),
        Err(e) => return Err(io(e)),
    };
    let helpers = doc
        .entry("credHelpers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(helpers) = helpers else {
        return Err(ConfigureError::BadShape {
            path: shown,
            key: "credHelpers".into(),
        });
    };
    let mut outcome = Outcome::default();
    for key in keys {
        match helpers.get(key) {
            Some(Value::String(s)) if s == HELPER_SUFFIX => outcome.unchanged.push(key.clone()),
            Some(old) => {
                outcome
                    .replaced
                    .push((key.clone(), old.as_str().unwrap_or("?").to_string()));
                helpers.insert(key.clone(), Value::String(HELPER_SUFFIX.into()));
            }
            None => {
                outcome.added.push(key.clone());
                helpers.insert(key.clone(), Value::String(HELPER_SUFFIX.into()));
            }
        }
    }
    if outcome.added.is_empty() && outcome.replaced.is_empty() {
        return Ok(outcome);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let mut body = serde_json::to_vec_pretty(&Value::Object(doc)).expect("JSON serialises");
    body.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(&body).map_err(io)?;
    // Keep the old file's mode; a new one is 0600 (it may later hold `auths`).
    let mode = mode.unwrap_or(0o600);
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(outcome)
}

/// Is `docker-credential-lava` on PATH? Clients run it by name.
pub fn helper_on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(HELPER_BINARY))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_and_hub_gets_both_keys() {
        let k = keys_for_registries(&[
            "https://index.docker.io/v1/".into(),
            "r.example:5000".into(),
        ])
        .unwrap();
        assert_eq!(
            k,
            vec!["https://index.docker.io/v1/", "docker.io", "r.example:5000"]
        );
        assert!(keys_for_registries(&["bad host".into()]).is_err());
    }

    #[test]
    fn keeps_other_keys_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"x":{"auth":"abc"}},"credHelpers":{"a.example":"ecr-login"},"proxies":{"default":{"httpProxy":"http://p:3128"}}}"#,
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let out = add_cred_helpers(&p, &["a.example".into(), "b.example".into()]).unwrap();
        assert_eq!(out.added, vec!["b.example"]);
        assert_eq!(out.replaced, vec![("a.example".into(), "ecr-login".into())]);
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["auths"]["x"]["auth"], "abc");
        assert_eq!(v["proxies"]["default"]["httpProxy"], "http://p:3128");
        assert_eq!(v["credHelpers"]["a.example"], "lava");
        assert_eq!(v["credHelpers"]["b.example"], "lava");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let again = add_cred_helpers(&p, &["b.example".into()]).unwrap();
        assert_eq!(again.unchanged, vec!["b.example"]);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn creates_missing_file_and_dir() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new/.docker/config.json");
        add_cred_helpers(&p, &["r.example".into()]).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"credHelpers": {"r.example": "lava"}}));
    }

    #[test]
    fn broken_config_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(&p, "{oops").unwrap();
        assert!(matches!(
            add_cred_helpers(&p, &["r.example".into()]),
            Err(ConfigureError::BadJson { .. })
        ));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{oops");
        std::fs::write(&p, r#"{"credHelpers": []}"#).unwrap();
        assert!(matches!(
            add_cred_helpers(&p, &["r.example".into()]),
            Err(ConfigureError::BadShape { .. })
        ));
    }
}

//! Configuration shared by both programs, read from the environment (see DESIGN.md).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("LAVA_CONNECTIONS=`{value}`: {reason}")]
    BadConnections { value: String, reason: String },
    #[error(
        "no connection specs: none of {searched} exists, and LAVA_REALM is not set for the \
         DynamoDB table; set LAVA_CONNECTIONS"
    )]
    NoConnections { searched: String },
    #[error(
        "LAVA_CONNECTIONS=dynamodb needs LAVA_REALM to name the table lava.<REALM>.connections"
    )]
    DynamoNeedsRealm,
}

/// Where connection specs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionsSource {
    File(PathBuf),
    Dir(PathBuf),
    Dynamo { table: String },
}

impl std::fmt::Display for ConnectionsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionsSource::File(p) | ConnectionsSource::Dir(p) => write!(f, "{}", p.display()),
            ConnectionsSource::Dynamo { table } => write!(f, "dynamodb:{table}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub realm: Option<String>,
    pub connections: ConnectionsSource,
    /// None when no cache directory can be found (no HOME): nothing is cached then.
    pub cache_dir: Option<PathBuf>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    pub fn from_env() -> Result<Settings, SettingsError> {
        let realm = env_nonempty("LAVA_REALM");
        let connections = connections_source(env_nonempty("LAVA_CONNECTIONS"), realm.as_deref())?;
        Ok(Settings {
            realm,
            connections,
            cache_dir: cache_dir(),
        })
    }
}

/// `$LAVA_DOCKER_CACHE_DIR`, else the platform cache dir + `lava-docker`.
pub fn cache_dir() -> Option<PathBuf> {
    env_nonempty("LAVA_DOCKER_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("lava-docker")))
}

/// The default search list, in order.
pub fn default_search_list() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(c) = dirs::config_dir() {
        out.push(c.join("lava/connections.json"));
        out.push(c.join("lava/connections.d"));
    }
    out.push(PathBuf::from("/etc/lava/connections.json"));
    out.push(PathBuf::from("/etc/lava/connections.d"));
    out
}

pub fn connections_source(
    value: Option<String>,
    realm: Option<&str>,
) -> Result<ConnectionsSource, SettingsError> {
    match value {
        Some(v) => parse_connections_value(&v, realm),
        None => {
            let list = default_search_list();
            for p in &list {
                if p.is_dir() {
                    return Ok(ConnectionsSource::Dir(p.clone()));
                }
                if p.is_file() {
                    return Ok(ConnectionsSource::File(p.clone()));
                }
            }
            match realm {
                Some(r) => Ok(ConnectionsSource::Dynamo {
                    table: format!("lava.{r}.connections"),
                }),
                None => Err(SettingsError::NoConnections {
                    searched: list
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            }
        }
    }
}

fn parse_connections_value(
    v: &str,
    realm: Option<&str>,
) -> Result<ConnectionsSource, SettingsError> {
    let v = v.trim();
    if v == "dynamodb" {
        let realm = realm.ok_or(SettingsError::DynamoNeedsRealm)?;
        return Ok(ConnectionsSource::Dynamo {
            table: format!("lava.{realm}.connections"),
        });
    }
    if let Some(table) = v.strip_prefix("dynamodb:") {
        if table.is_empty() {
            return Err(SettingsError::BadConnections {
                value: v.to_string(),
                reason: "no table name after `dynamodb:`".into(),
            });
        }
        return Ok(ConnectionsSource::Dynamo {
            table: table.to_string(),
        });
    }
    let p = Path::new(v);
    if p.is_dir() {
        Ok(ConnectionsSource::Dir(p.to_path_buf()))
    } else if p.is_file() {
        Ok(ConnectionsSource::File(p.to_path_buf()))
    } else {
        Err(SettingsError::BadConnections {
            value: v.to_string(),
            reason: "no such file or directory (expected a JSON file, a directory of *.json, \
                     `dynamodb` or `dynamodb:<table>`)"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_forms() {
        assert_eq!(
            connections_source(Some("dynamodb".into()), Some("prod")).unwrap(),
            ConnectionsSource::Dynamo {
                table: "lava.prod.connections".into()
            }
        );
        assert_eq!(
            connections_source(Some("dynamodb:t1".into()), None).unwrap(),
            ConnectionsSource::Dynamo { table: "t1".into() }
        );
        assert!(matches!(
            connections_source(Some("dynamodb".into()), None),
            Err(SettingsError::DynamoNeedsRealm)
        ));
    }

    #[test]
    fn missing_path_is_named() {
        let e = connections_source(Some("/nonexistent/x.json".into()), None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.json"), "{e}");
    }

    #[test]
    fn file_and_dir() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.json");
        std::fs::write(&f, "[]").unwrap();
        assert_eq!(
            connections_source(Some(f.display().to_string()), None).unwrap(),
            ConnectionsSource::File(f)
        );
        assert_eq!(
            connections_source(Some(d.path().display().to_string()), None).unwrap(),
            ConnectionsSource::Dir(d.path().to_path_buf())
        );
    }
}

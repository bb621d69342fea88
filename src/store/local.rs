//! Connection specs from local JSON files: one file (an object or an array of objects) or a
//! directory of `*.json` files read in name order.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ConnectionStore, SpecSet, StoreError};

#[derive(Debug, Clone)]
pub struct LocalStore {
    files: Source,
}

#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Dir(PathBuf),
}

impl LocalStore {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        LocalStore {
            files: Source::File(path.into()),
        }
    }

    pub fn dir(path: impl Into<PathBuf>) -> Self {
        LocalStore {
            files: Source::Dir(path.into()),
        }
    }

    pub fn load_sync(&self) -> Result<SpecSet, StoreError> {
        let mut set = SpecSet::default();
        match &self.files {
            Source::File(p) => load_file(p, &mut set)?,
            Source::Dir(d) => {
                let rd = std::fs::read_dir(d).map_err(|source| StoreError::Io {
                    path: d.display().to_string(),
                    source,
                })?;
                let mut paths: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                    .collect();
                paths.sort();
                for p in paths {
                    load_file(&p, &mut set)?;
                }
            }
        }
        Ok(set)
    }
}

fn load_file(path: &Path, set: &mut SpecSet) -> Result<(), StoreError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Io {
        path: shown.clone(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| StoreError::Json {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    match value {
        Value::Array(items) => {
            for item in &items {
                set.push_record(item, &shown);
            }
        }
        obj @ Value::Object(_) => set.push_record(&obj, &shown),
        _ => {
            return Err(StoreError::Shape {
                path: shown,
                message: "expected a connection spec object or an array of them".into(),
            })
        }
    }
    Ok(())
}

impl ConnectionStore for LocalStore {
    async fn load_all(&self) -> Result<SpecSet, StoreError> {
        self.load_sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_object_and_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("a.json"),
            r#"[{"conn_id":"a","type":"docker","enabled":true},{"conn_id":"pg","type":"postgres"}]"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("b.json"),
            r#"{"conn_id":"b","type":"docker","registry":"ecr"}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("notes.txt"), "ignored").unwrap();
        let set = LocalStore::dir(d.path()).load_sync().unwrap();
        assert_eq!(set.specs.len(), 3);
        assert_eq!(set.docker().count(), 2);
        assert!(set.invalid.is_empty());
    }

    #[test]
    fn bad_record_does_not_hide_others_and_duplicates_are_flagged() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.json");
        std::fs::write(
            &f,
            r#"[{"conn_id":"ok","type":"docker"},
                {"conn_id":"bad","type":"docker","tls":"yes","registry":"r.example"},
                {"conn_id":"ok","type":"docker"}]"#,
        )
        .unwrap();
        let set = LocalStore::file(&f).load_sync().unwrap();
        assert_eq!(set.specs.len(), 1);
        assert_eq!(set.invalid.len(), 2);
        let bad = set.invalid_named("bad").unwrap();
        assert!(bad.error.contains("`tls`"), "{}", bad.error);
        assert_eq!(bad.host_hint.as_deref(), Some("r.example"));
        assert!(set
            .invalid
            .iter()
            .any(|i| i.error.contains("more than once")));
    }

    #[test]
    fn broken_json_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.json");
        std::fs::write(&f, "{not json").unwrap();
        let e = LocalStore::file(&f).load_sync().unwrap_err();
        assert!(e.to_string().contains("c.json"), "{e}");
    }
}

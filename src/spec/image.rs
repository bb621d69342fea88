//! Image references: `repository[:tag]`, `host[:port]/repository[:tag]`,
//! `repository@sha256:<digest>` (lava's own parser splits on `:` and gets the last two wrong).

use crate::registry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host[:port] when the reference names one.
    pub host: Option<String>,
    /// The repository path without the host.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("invalid image reference `{value}`: {reason}")]
pub struct ImageError {
    pub value: String,
    pub reason: String,
}

impl ImageRef {
    pub fn parse(raw: &str) -> Result<ImageRef, ImageError> {
        let value = raw.trim();
        let err = |reason: &str| ImageError {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(err("empty"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(err("contains white space"));
        }
        let (rest, digest) = match value.split_once('@') {
            Some((r, d)) => {
                let (algo, hex) = d
                    .split_once(':')
                    .ok_or_else(|| err("digest must be <algorithm>:<hex>"))?;
                let ok = match algo {
                    "sha256" => hex.len() == 64,
                    "sha512" => hex.len() == 128,
                    _ => false,
                } && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
                if !ok {
                    return Err(err("digest must be sha256:<64 lower-case hex digits>"));
                }
                (r, Some(d.to_string()))
            }
            None => (value, None),
        };
        let (host, path) = match rest.split_once('/') {
            Some((first, after))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                let host = registry::normalize_server(first).map_err(|e| err(e.reason))?;
                (Some(host), after)
            }
            _ => (None, rest),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
            if !ok {
                return Err(err("tag must be [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        if repository.is_empty() {
            return Err(err("no repository"));
        }
        for comp in repository.split('/') {
            let ok = !comp.is_empty()
                && comp.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b == b'.'
                        || b == b'_'
                        || b == b'-'
                })
                && comp
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && comp
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(err(
                    "repository path components must be lower-case letters, digits and . _ - separators",
                ));
            }
        }
        Ok(ImageRef {
            host,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The registry host the image is pulled from (`docker.io` when none is named).
    pub fn registry_host(&self) -> &str {
        self.host.as_deref().unwrap_or(registry::DOCKER_HUB)
    }

    /// The same image in another registry (lava prefixes a connection's registry host).
    pub fn with_host(&self, host: &str) -> ImageRef {
        ImageRef {
            host: Some(host.to_string()),
            ..self.clone()
        }
    }

    /// `host/repo` as the Engine API's `fromImage` wants it.
    pub fn name(&self) -> String {
        match &self.host {
            Some(h) if h != registry::DOCKER_HUB => format!("{h}/{}", self.repository),
            _ => self.repository.clone(),
        }
    }

    /// The tag, `latest` by default; `None` when pinned by digest alone.
    pub fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        }
    }

    /// The full reference to create the container from.
    pub fn reference(&self) -> String {
        let mut s = self.name();
        if let Some(t) = self.effective_tag() {
            if self.digest.is_none() {
                s.push(':');
                s.push_str(t);
            }
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn forms() {
        let i = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            (i.host.as_deref(), i.repository.as_str(), i.effective_tag()),
            (None, "busybox", Some("latest"))
        );
        assert_eq!(i.reference(), "busybox:latest");
        assert_eq!(i.registry_host(), "docker.io");

        let i = ImageRef::parse("lava/demo:1.2").unwrap();
        assert_eq!(
            (i.host, i.repository.as_str(), i.tag.as_deref()),
            (None, "lava/demo", Some("1.2"))
        );

        let i = ImageRef::parse("127.0.0.1:5000/lava/demo:v1").unwrap();
        assert_eq!(i.host.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(i.repository, "lava/demo");
        assert_eq!(i.reference(), "127.0.0.1:5000/lava/demo:v1");

        let i = ImageRef::parse("localhost:5000/demo").unwrap();
        assert_eq!(i.host.as_deref(), Some("localhost:5000"));
        assert_eq!(i.reference(), "localhost:5000/demo:latest");

        let i = ImageRef::parse(&format!("demo@{D}")).unwrap();
        assert_eq!(i.digest.as_deref(), Some(D));
        assert_eq!(i.effective_tag(), None);
        assert_eq!(i.reference(), format!("demo@{D}"));

        let i = ImageRef::parse(&format!("r.example:5000/demo:v1@{D}")).unwrap();
        assert_eq!(i.reference(), format!("r.example:5000/demo@{D}"));

        let i = ImageRef::parse("docker.io/library/busybox").unwrap();
        assert_eq!(i.name(), "library/busybox");
        let i = ImageRef::parse("lava/x")
            .unwrap()
            .with_host("123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(
            i.reference(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/lava/x:latest"
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Upper/case",
            "demo:",
            "demo:bad tag",
            "demo@sha256:short",
            "demo@md5:0123456789abcdef0123456789abcdef",
            "r.example:99999/demo",
            "/demo",
            "demo/",
            "demo:-x",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert_eq!(e.value, bad.trim());
        }
    }
}

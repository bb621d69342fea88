//! The kubelet image credential provider (credentialprovider.kubelet.k8s.io/v1): one request on
//! stdin, one response on stdout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Context, HelperError};
use crate::credentials::CredentialKind;
use crate::spec::image::ImageRef;

pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// How long the kubelet may reuse an SSM password before asking again. lava itself re-reads
/// SSM parameters every 2 minutes; 10 minutes keeps node pulls cheap and rotations prompt.
pub const PASSWORD_CACHE_SECS: i64 = 600;
/// How long "no credentials" (anonymous) answers may be reused.
pub const ANONYMOUS_CACHE_SECS: i64 = 600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    api_version: Option<String>,
    kind: Option<String>,
    image: Option<String>,
}

#[derive(Debug, Serialize)]
struct AuthConfig {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    api_version: &'static str,
    kind: &'static str,
    cache_key_type: &'static str,
    cache_duration: String,
    auth: BTreeMap<String, AuthConfig>,
}

/// A Go `time.Duration` string, as the kubelet parses it.
pub fn go_duration(secs: i64) -> String {
    let secs = secs.max(0);
    format!("{}h{}m{}s", secs / 3600, (secs % 3600) / 60, secs % 60)
}

fn bad(msg: impl Into<String>) -> HelperError {
    HelperError::Input(format!("kubelet request: {}", msg.into()))
}

/// Answer one CredentialProviderRequest.
pub async fn respond(ctx: &Context, input: &str) -> Result<String, HelperError> {
    let req: Request =
        serde_json::from_str(input.trim()).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    match req.api_version.as_deref() {
        Some(API_VERSION) => {}
        other => {
            return Err(bad(format!(
                "apiVersion must be `{API_VERSION}`, got `{}`",
                other.unwrap_or("<missing>")
            )))
        }
    }
    match req.kind.as_deref() {
        Some("CredentialProviderRequest") => {}
        other => {
            return Err(bad(format!(
                "kind must be `CredentialProviderRequest`, got `{}`",
                other.unwrap_or("<missing>")
            )))
        }
    }
    let image = req
        .image
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| bad("no `image`"))?;
    let image = ImageRef::parse(&image).map_err(|e| bad(e.to_string()))?;
    let host = image.registry_host().to_string();

    let mut auth = BTreeMap::new();
    let cache_secs = match ctx.get(&host).await {
        Ok(c) => match c.kind {
            CredentialKind::Anonymous => ANONYMOUS_CACHE_SECS,
            kind => {
                let secs = match kind {
                    CredentialKind::Ecr => c.fresh_for.unwrap_or(0),
                    _ => PASSWORD_CACHE_SECS,
                };
                auth.insert(
                    host,
                    AuthConfig {
                        username: c.username,
                        password: c.secret.expose().to_string(),
                    },
                );
                secs
            }
        },
        // No spec: the kubelet pulls anonymously, as docker would.
        Err(e) if e.is_not_found() => ANONYMOUS_CACHE_SECS,
        Err(e) => return Err(e),
    };
    let resp = Response {
        api_version: API_VERSION,
        kind: "CredentialProviderResponse",
        cache_key_type: "Registry",
        cache_duration: go_duration(cache_secs),
        auth,
    };
    Ok(serde_json::to_string(&resp).expect("json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration(6 * 3600), "6h0m0s");
        assert_eq!(go_duration(3725), "1h2m5s");
        assert_eq!(go_duration(-5), "0h0m0s");
    }
}

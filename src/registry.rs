//! Registry host names: normalising what clients send, parsing ECR hosts, and the host a
//! connection spec points at.

/// The canonical key for Docker Hub in this crate (what containers/image and Nomad send).
pub const DOCKER_HUB: &str = "docker.io";
/// The key the docker CLI uses for Docker Hub in credHelpers and when calling helpers.
pub const DOCKER_HUB_CLI_KEY: &str = "https://index.docker.io/v1/";

const HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("invalid registry server `{value}`: {reason}")]
pub struct ServerError {
    pub value: String,
    pub reason: &'static str,
}

/// Which account an ECR spec names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EcrAccount {
    /// `ecr`: the account of the current AWS credentials (STS GetCallerIdentity).
    Current,
    /// `ecr:<account>`.
    Id(String),
}

/// What a docker spec's `registry` field points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegistryTarget {
    DockerHub,
    Ecr(EcrAccount),
    Host(String),
}

/// Map a normalised host to a target (Docker Hub aliases collapse to one).
pub fn target_for_host(host: &str) -> RegistryTarget {
    if host == DOCKER_HUB {
        RegistryTarget::DockerHub
    } else {
        RegistryTarget::Host(host.to_string())
    }
}

/// Normalise a server string as clients send it to `host[:port]`, lower case, with every Docker
/// Hub alias mapped to `docker.io`. Accepts a scheme, a path and a trailing slash.
pub fn normalize_server(raw: &str) -> Result<String, ServerError> {
    let err = |reason| ServerError {
        value: raw.trim().to_string(),
        reason,
    };
    let s = raw.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    if s.contains("://") {
        return Err(err("unsupported URL scheme"));
    }
    let authority = s.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(err("user information is not allowed in a registry address"));
    }
    if authority.is_empty() {
        return Err(err("no host"));
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = split_port(&authority).ok_or_else(|| err("bad port"))?;
    if !valid_host(host) {
        return Err(err("not a valid host name"));
    }
    if HUB_ALIASES.contains(&host) && port.is_none() {
        return Ok(DOCKER_HUB.to_string());
    }
    Ok(authority)
}

fn split_port(a: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = a.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        if let Some(p) = port {
            valid_port(p).then_some(())?;
        }
        return Some((&a[..end + 2], port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) => valid_port(p).then_some((h, Some(p))),
        None => Some((a, None)),
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

fn valid_host(h: &str) -> bool {
    if h.starts_with('[') {
        return h.ends_with(']')
            && h.len() > 2
            && h[1..h.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A parsed ECR private registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
    pub fips: bool,
    pub dual_stack: bool,
    /// The partition's DNS suffix, e.g. `amazonaws.com`, `amazonaws.com.cn`, `on.aws`.
    pub suffix: String,
}

const ECR_SUFFIXES: &[&str] = &[
    "amazonaws.com",
    "amazonaws.com.cn",
    "amazonaws.eu",
    "on.aws",
    "on.amazonwebservices.com.cn",
    "sc2s.sgov.gov",
    "c2s.ic.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];

/// Parse `<account>.dkr.ecr[-fips].<region>.<suffix>` (and the dual-stack `dkr-ecr` form) with
/// the same grammar as ecr-login and the kubelet provider. The whole host must match, so a
/// lookalike such as `…amazonaws.com.evil.example` is not ECR.
pub fn parse_ecr_host(host: &str) -> Option<EcrHost> {
    let bytes = host.as_bytes();
    if bytes.len() < 13 || !bytes[..12].iter().all(u8::is_ascii_digit) || bytes[12] != b'.' {
        return None;
    }
    let account = &host[..12];
    let rest = &host[13..];
    let (rest, dual_stack) = if let Some(r) = rest.strip_prefix("dkr.ecr") {
        (r, false)
    } else if let Some(r) = rest.strip_prefix("dkr-ecr") {
        (r, true)
    } else {
        return None;
    };
    let (rest, fips) = match rest.strip_prefix("-fips") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let rest = rest.strip_prefix('.')?;
    let (region, suffix) = rest.split_once('.')?;
    let mut chars = region.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphanumeric()
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    if !ECR_SUFFIXES.contains(&suffix) {
        return None;
    }
    // The dual-stack suffixes only exist on the dual-stack hosts and vice versa, but the peers'
    // pattern accepts either combination; so do we.
    Some(EcrHost {
        account: account.to_string(),
        region: region.to_string(),
        fips,
        dual_stack: dual_stack || suffix.starts_with("on."),
        suffix: suffix.to_string(),
    })
}

/// The standard ECR host for an account in a region.
pub fn ecr_host_for(account: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{account}.dkr.ecr.{region}.{suffix}")
}

/// The key a docker config's credHelpers uses for a normalised host.
pub fn cred_helpers_keys(host: &str) -> Vec<String> {
    if host == DOCKER_HUB {
        // The docker CLI looks up the v1 URL; containers/image and Nomad look up docker.io.
        vec![DOCKER_HUB_CLI_KEY.to_string(), DOCKER_HUB.to_string()]
    } else {
        vec![host.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_what_clients_send() {
        for (input, want) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("  Registry.Example.com\n", "registry.example.com"),
            ("host:5000", "host:5000"),
            ("https://host:5000/some/path/", "host:5000"),
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("localhost", "localhost"),
            ("[::1]:5000", "[::1]:5000"),
            ("ghcr.io/", "ghcr.io"),
        ] {
            assert_eq!(normalize_server(input).unwrap(), want, "input {input:?}");
        }
    }

    #[test]
    fn rejects_garbage_servers() {
        for input in [
            "",
            "   ",
            "https://",
            "ftp://host",
            "host:port",
            "host:99999",
            "user:pw@host",
            "bad host",
            "-lead.example",
        ] {
            let e = normalize_server(input).unwrap_err();
            assert_eq!(e.value, input.trim());
        }
    }

    #[test]
    fn hub_with_port_is_not_hub() {
        assert_eq!(normalize_server("docker.io:443").unwrap(), "docker.io:443");
    }

    #[test]
    fn parses_every_ecr_form() {
        let cases = [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "us-east-1",
                false,
                false,
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
                true,
                false,
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
                false,
                false,
            ),
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                "eusc-de-east-1",
                false,
                false,
            ),
            (
                "123456789012.dkr-ecr.eu-west-1.on.aws",
                "eu-west-1",
                false,
                true,
            ),
            (
                "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
                "cn-north-1",
                false,
                true,
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-1.on.aws",
                "us-east-1",
                true,
                true,
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "us-iso-east-1",
                false,
                false,
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                "us-isob-east-1",
                false,
                false,
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                "eu-isoe-west-1",
                false,
                false,
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                "us-isof-south-1",
                false,
                false,
            ),
        ];
        for (host, region, fips, dual) in cases {
            let h = parse_ecr_host(host).unwrap_or_else(|| panic!("{host} should parse"));
            assert_eq!(h.account, "123456789012");
            assert_eq!(h.region, region, "{host}");
            assert_eq!(h.fips, fips, "{host}");
            assert_eq!(h.dual_stack, dual, "{host}");
        }
    }

    #[test]
    fn spoofs_and_lookalikes_are_not_ecr() {
        for host in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "evil.123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
            "12345678901a.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.amazonaws.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.-us-east-1.amazonaws.com",
            "123456789012.dkrXecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.org",
            "123456789012.dkr.ecr.us-east-1.evilamazonaws.com",
            "public.ecr.aws",
            "docker.io",
        ] {
            assert_eq!(parse_ecr_host(host), None, "{host} must not be ECR");
        }
    }

    #[test]
    fn ecr_host_for_region() {
        assert_eq!(
            ecr_host_for("123456789012", "eu-west-1"),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            ecr_host_for("123456789012", "cn-north-1"),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
    }
}

//! `host_config`: the Python Docker SDK's `containers.run()` keys, converted the way the SDK
//! converts them, onto the Engine API's create body.

use std::collections::HashMap;

use bollard::models::{HostConfig, PortBinding, ResourcesBlkioWeightDevice, ThrottleDevice};
use serde_json::{Map, Value};

/// Every key lava allows.
pub const KEYS: &[&str] = &[
    "blkio_weight",
    "blkio_weight_device",
    "cap_add",
    "cap_drop",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_shares",
    "cpuset_cpus",
    "cpuset_mems",
    "device_read_bps",
    "device_read_iops",
    "device_write_bps",
    "device_write_iops",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "extra_hosts",
    "group_add",
    "hostname",
    "mem_limit",
    "mem_swappiness",
    "memswap_limit",
    "nano_cpus",
    "network_disabled",
    "network_mode",
    "ports",
    "publish_all_ports",
    "shm_size",
    "user",
    "working_dir",
];

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum HostConfigError {
    #[error("host_config: unknown key(s): {}", .0.join(", "))]
    Unknown(Vec<String>),
    #[error("host_config.{key}: {message} (got {value})")]
    Bad {
        key: String,
        value: String,
        message: String,
    },
}

fn bad(key: &str, value: &Value, message: impl Into<String>) -> HostConfigError {
    HostConfigError::Bad {
        key: key.to_string(),
        value: value.to_string(),
        message: message.into(),
    }
}

/// A field lava defaults unless the job sets it; an explicit null leaves it out.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Setting<T> {
    #[default]
    Default,
    Omit,
    Set(T),
}

impl<T> Setting<T> {
    /// The value to send: the job's, else the default, else nothing.
    pub fn resolve(self, default: impl FnOnce() -> Option<T>) -> Option<T> {
        match self {
            Setting::Default => default(),
            Setting::Omit => None,
            Setting::Set(v) => Some(v),
        }
    }
}

/// The converted configuration: HostConfig fields plus the create body's top-level ones.
#[derive(Debug, Clone, Default)]
pub struct Converted {
    pub host: HostConfig,
    pub hostname: Setting<String>,
    pub domainname: Option<String>,
    pub user: Setting<String>,
    pub group_add: Setting<Vec<String>>,
    pub working_dir: Setting<String>,
    pub network_disabled: Option<bool>,
    pub exposed_ports: Option<Vec<String>>,
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn int(key: &str, v: &Value) -> Result<i64, HostConfigError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| bad(key, v, "expected an integer")),
        _ => Err(bad(key, v, "expected an integer")),
    }
}

fn string(key: &str, v: &Value) -> Result<String, HostConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(key, v, "expected a string")),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, HostConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(bad(key, v, "expected true or false")),
    }
}

fn str_list(key: &str, v: &Value) -> Result<Vec<String>, HostConfigError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(key, v, "expected a list of strings")),
            })
            .collect(),
        _ => Err(bad(key, v, "expected a list of strings")),
    }
}

/// Sizes as the SDK parses them: bytes, or digits with a unit b, k, m, g (powers of 1024).
pub fn parse_size(key: &str, v: &Value) -> Result<i64, HostConfigError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| bad(key, v, "expected a size")),
        Value::String(s) => {
            let mut s = s.trim().to_string();
            if s.is_empty() {
                return Ok(0);
            }
            if s == "-1" {
                return Ok(-1);
            }
            let chars: Vec<char> = s.chars().collect();
            if chars.len() >= 2
                && chars[chars.len() - 2].is_ascii_alphabetic()
                && matches!(chars[chars.len() - 1], 'b' | 'B')
            {
                s.pop();
            }
            let last = s.chars().last().unwrap_or('0').to_ascii_lowercase();
            let (digits, mult) = if last.is_ascii_digit() {
                (s.as_str(), 1u64)
            } else {
                let mult = match last {
                    'b' => 1,
                    'k' => 1 << 10,
                    'm' => 1 << 20,
                    'g' => 1 << 30,
                    _ => return Err(bad(key, v, "a size's unit must be one of b, k, m, g")),
                };
                (&s[..s.len() - 1], mult)
            };
            let ok = !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                && digits.chars().filter(|&c| c == '.').count() <= 1;
            let n: f64 = if ok { digits.parse().ok() } else { None }.ok_or_else(|| {
                bad(
                    key,
                    v,
                    "not a size (digits with an optional unit b, k, m, g)",
                )
            })?;
            Ok((n * mult as f64) as i64)
        }
        _ => Err(bad(
            key,
            v,
            "expected a size (a number of bytes or a string like \"512m\")",
        )),
    }
}

fn throttle_list(key: &str, v: &Value, field: &str) -> Result<Vec<(String, i64)>, HostConfigError> {
    let Value::Array(items) = v else {
        return Err(bad(
            key,
            v,
            format!("expected a list of {{\"Path\", \"{field}\"}} objects"),
        ));
    };
    items
        .iter()
        .map(|i| {
            let path = i.get("Path").and_then(Value::as_str);
            let n = i.get(field).and_then(Value::as_i64);
            match (path, n, i.as_object().map(|o| o.len())) {
                (Some(p), Some(n), Some(2)) => Ok((p.to_string(), n)),
                _ => Err(bad(
                    key,
                    v,
                    format!("expected a list of {{\"Path\", \"{field}\"}} objects"),
                )),
            }
        })
        .collect()
}

fn throttle(key: &str, v: &Value) -> Result<Vec<ThrottleDevice>, HostConfigError> {
    Ok(throttle_list(key, v, "Rate")?
        .into_iter()
        .map(|(path, rate)| ThrottleDevice {
            path: Some(path),
            rate: Some(rate),
        })
        .collect())
}

fn port_binding(key: &str, whole: &Value, v: &Value) -> Result<PortBinding, HostConfigError> {
    match v {
        Value::Null => Ok(PortBinding {
            host_ip: Some(String::new()),
            host_port: Some(String::new()),
        }),
        Value::Number(n) if n.is_u64() => Ok(PortBinding {
            host_ip: Some(String::new()),
            host_port: Some(n.to_string()),
        }),
        Value::String(s) if s.parse::<u16>().is_ok() => Ok(PortBinding {
            host_ip: Some(String::new()),
            host_port: Some(s.clone()),
        }),
        Value::Object(m) => {
            let port = match m.get("HostPort") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(bad(key, whole, "a port binding map needs HostPort")),
            };
            if m.keys().any(|k| k != "HostPort" && k != "HostIp") {
                return Err(bad(
                    key,
                    whole,
                    "a port binding map has only HostIp and HostPort",
                ));
            }
            let ip = match m.get("HostIp") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(bad(key, whole, "HostIp must be a string")),
            };
            Ok(PortBinding {
                host_ip: Some(ip),
                host_port: Some(port),
            })
        }
        _ => Err(bad(
            key,
            whole,
            "a port binding is a port number, null, a list, or {HostIp, HostPort}",
        )),
    }
}

/// ExposedPorts and PortBindings.
type Ports = (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>);

fn ports(v: &Value) -> Result<Ports, HostConfigError> {
    let key = "ports";
    let Value::Object(m) = v else {
        return Err(bad(
            key,
            v,
            "expected a map of \"<port>[/<proto>]\" to bindings",
        ));
    };
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for (k, b) in m {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        if port.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(bad(key, v, format!("`{k}` is not <port>[/tcp|udp|sctp]")));
        }
        let name = format!("{port}/{proto}");
        let list = match b {
            Value::Array(items) => items
                .iter()
                .map(|i| port_binding(key, v, i))
                .collect::<Result<Vec<_>, _>>()?,
            one => vec![port_binding(key, v, one)?],
        };
        exposed.push(name.clone());
        bindings.insert(name, Some(list));
    }
    exposed.sort();
    Ok((exposed, bindings))
}

/// Convert a job's host_config. Unknown keys are named, sorted; nothing is partially applied.
pub fn convert(map: &Map<String, Value>) -> Result<Converted, HostConfigError> {
    let mut unknown: Vec<String> = map
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(HostConfigError::Unknown(unknown));
    }
    let mut out = Converted::default();
    let h = &mut out.host;
    for (key, v) in map {
        let k = key.as_str();
        // "truthy" keys are dropped when falsy, as the SDK does.
        let t = truthy(v);
        match k {
            "blkio_weight" if t => {
                let n = int(k, v)?;
                h.blkio_weight = Some(u16::try_from(n).map_err(|_| bad(k, v, "out of range"))?);
            }
            "blkio_weight_device" if t => {
                h.blkio_weight_device = Some(
                    throttle_list(k, v, "Weight")?
                        .into_iter()
                        .map(|(path, w)| ResourcesBlkioWeightDevice {
                            path: Some(path),
                            weight: usize::try_from(w).ok(),
                        })
                        .collect(),
                )
            }
            "cap_add" if t => h.cap_add = Some(str_list(k, v)?),
            "cap_drop" if t => h.cap_drop = Some(str_list(k, v)?),
            "cpu_count" if t => h.cpu_count = Some(int(k, v)?),
            "cpu_percent" if t => h.cpu_percent = Some(int(k, v)?),
            "cpu_period" if t => h.cpu_period = Some(int(k, v)?),
            "cpu_quota" if t => h.cpu_quota = Some(int(k, v)?),
            "cpu_shares" if t => h.cpu_shares = Some(int(k, v)?),
            "cpuset_cpus" if t => h.cpuset_cpus = Some(string(k, v)?),
            "cpuset_mems" if t => h.cpuset_mems = Some(string(k, v)?),
            "device_read_bps" if t => h.blkio_device_read_bps = Some(throttle(k, v)?),
            "device_read_iops" if t => h.blkio_device_read_iops = Some(throttle(k, v)?),
            "device_write_bps" if t => h.blkio_device_write_bps = Some(throttle(k, v)?),
            "device_write_iops" if t => h.blkio_device_write_iops = Some(throttle(k, v)?),
            "dns" if !v.is_null() => h.dns = Some(str_list(k, v)?),
            "dns_opt" if !v.is_null() => h.dns_options = Some(str_list(k, v)?),
            "dns_search" if t => h.dns_search = Some(str_list(k, v)?),
            "domainname" if !v.is_null() => out.domainname = Some(string(k, v)?),
            "extra_hosts" if !v.is_null() => {
                h.extra_hosts = Some(match v {
                    Value::Object(m) => {
                        let mut list = m
                            .iter()
                            .map(|(host, ip)| match ip {
                                Value::String(ip) => Ok(format!("{host}:{ip}")),
                                _ => Err(bad(k, v, "each host maps to an IP address string")),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        list.sort();
                        list
                    }
                    Value::Array(_) => str_list(k, v)?,
                    _ => {
                        return Err(bad(
                            k,
                            v,
                            "expected a map of host to IP, or a list of \"host:ip\"",
                        ))
                    }
                })
            }
            "group_add" => {
                out.group_add = match v {
                    Value::Null => Setting::Omit,
                    _ if !t => Setting::Omit,
                    Value::Array(items) => Setting::Set(
                        items
                            .iter()
                            .map(|i| match i {
                                Value::String(s) => Ok(s.clone()),
                                Value::Number(n) if n.is_i64() => Ok(n.to_string()),
                                _ => Err(bad(k, v, "expected a list of group names or ids")),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(bad(k, v, "expected a list of group names or ids")),
                }
            }
            "hostname" => {
                out.hostname = match v {
                    Value::Null => Setting::Omit,
                    _ => Setting::Set(string(k, v)?),
                }
            }
            "mem_limit" if !v.is_null() => h.memory = Some(parse_size(k, v)?),
            "memswap_limit" if !v.is_null() => h.memory_swap = Some(parse_size(k, v)?),
            "shm_size" if !v.is_null() => h.shm_size = Some(parse_size(k, v)?),
            "mem_swappiness" if !v.is_null() => h.memory_swappiness = Some(int(k, v)?),
            "nano_cpus" if t => h.nano_cpus = Some(int(k, v)?),
            "network_disabled" if !v.is_null() => out.network_disabled = Some(boolean(k, v)?),
            "network_mode" if !v.is_null() => h.network_mode = Some(string(k, v)?),
            "ports" if t => {
                let (exposed, bindings) = ports(v)?;
                out.exposed_ports = Some(exposed);
                h.port_bindings = Some(bindings);
            }
            "publish_all_ports" if t => h.publish_all_ports = Some(boolean(k, v)?),
            "user" => {
                out.user = match v {
                    Value::Null => Setting::Omit,
                    Value::String(s) => Setting::Set(s.clone()),
                    Value::Number(n) if n.is_i64() => Setting::Set(n.to_string()),
                    _ => return Err(bad(k, v, "expected a user name, uid, or \"uid:gid\"")),
                }
            }
            "working_dir" => {
                out.working_dir = match v {
                    Value::Null => Setting::Omit,
                    _ => {
                        let s = string(k, v)?;
                        if !s.starts_with('/') {
                            return Err(bad(k, v, "must be an absolute path"));
                        }
                        Setting::Set(s)
                    }
                }
            }
            // Falsy values of "truthy" keys and nulls of "not-null" keys are simply not sent.
            _ => {}
        }
    }
    if out.host.network_mode.as_deref() == Some("host") && out.host.port_bindings.is_some() {
        return Err(HostConfigError::Bad {
            key: "ports".into(),
            value: map["ports"].to_string(),
            message: "cannot publish ports with network_mode \"host\"".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(v: Value) -> Result<Converted, HostConfigError> {
        convert(v.as_object().unwrap())
    }

    #[test]
    fn thirty_three_keys() {
        assert_eq!(KEYS.len(), 33);
    }

    #[test]
    fn unknown_keys_sorted() {
        let e = conv(json!({"zeta": 1, "alpha": 2, "cpu_shares": 512})).unwrap_err();
        assert_eq!(e.to_string(), "host_config: unknown key(s): alpha, zeta");
    }

    #[test]
    fn sizes() {
        for (v, want) in [
            (json!(1024), 1024),
            (json!("512m"), 512 << 20),
            (json!("512mb"), 512 << 20),
            (json!("1.5g"), 3 << 29),
            (json!("2K"), 2048),
            (json!("100"), 100),
            (json!("100b"), 100),
            (json!("-1"), -1),
        ] {
            assert_eq!(parse_size("mem_limit", &v).unwrap(), want, "{v}");
        }
        for v in [json!("10t"), json!("abc"), json!("1.2.3m"), json!([1])] {
            let e = parse_size("mem_limit", &v).unwrap_err();
            assert!(e.to_string().contains("mem_limit"), "{e}");
        }
    }

    #[test]
    fn conversions() {
        let c = conv(json!({
            "extra_hosts": {"b.example": "10.0.0.2", "a.example": "10.0.0.1"},
            "group_add": [1000, "audio"],
            "user": 1234,
            "ports": {"8080": 18080, "53/udp": null, "9000": [{"HostIp": "127.0.0.1", "HostPort": "19000"}, "19001"]},
            "cpu_shares": 0,
            "dns": [],
            "mem_limit": "64m",
            "memswap_limit": -1,
            "hostname": null
        }))
        .unwrap();
        assert_eq!(
            c.host.extra_hosts.unwrap(),
            vec!["a.example:10.0.0.1", "b.example:10.0.0.2"]
        );
        assert_eq!(
            c.group_add,
            Setting::Set(vec!["1000".into(), "audio".into()])
        );
        assert_eq!(c.user, Setting::Set("1234".into()));
        assert_eq!(
            c.exposed_ports.unwrap(),
            vec!["53/udp", "8080/tcp", "9000/tcp"]
        );
        let pb = c.host.port_bindings.unwrap();
        assert_eq!(
            pb["8080/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("18080")
        );
        assert_eq!(
            pb["53/udp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert_eq!(pb["9000/tcp"].as_ref().unwrap().len(), 2);
        assert_eq!(c.host.cpu_shares, None, "falsy truthy-key dropped");
        assert_eq!(
            c.host.dns,
            Some(vec![]),
            "not-null key sent even when empty"
        );
        assert_eq!(c.host.memory, Some(64 << 20));
        assert_eq!(c.host.memory_swap, Some(-1));
        assert_eq!(c.hostname, Setting::Omit);
        assert_eq!(c.working_dir, Setting::Default);
    }

    #[test]
    fn errors_name_key_and_value() {
        for (v, key) in [
            (json!({"cpu_shares": "512"}), "cpu_shares"),
            (json!({"cap_add": "NET_ADMIN"}), "cap_add"),
            (json!({"network_disabled": "yes"}), "network_disabled"),
            (json!({"ports": {"http": 80}}), "ports"),
            (json!({"ports": {"80": {"HostIp": "0.0.0.0"}}}), "ports"),
            (
                json!({"ports": {"80": 8080}, "network_mode": "host"}),
                "ports",
            ),
            (json!({"working_dir": "relative"}), "working_dir"),
            (
                json!({"device_read_bps": [{"Path": "/dev/sda"}]}),
                "device_read_bps",
            ),
            (json!({"extra_hosts": "a:1"}), "extra_hosts"),
        ] {
            match conv(v.clone()).unwrap_err() {
                HostConfigError::Bad { key: k, .. } => assert_eq!(k, key, "{v}"),
                other => panic!("{other:?}"),
            }
        }
    }
}

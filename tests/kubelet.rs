//! The kubelet credential provider mode and the exact calls Nomad's docker driver makes.

mod common;

use common::*;
use serde_json::{json, Value};

fn kubelet(env: &TestEnv, req: &str) -> (i32, String, String) {
    let o = env.helper(&["kubelet"], req);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

fn request(image: &str) -> String {
    json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": image}).to_string()
}

fn duration_secs(d: &str) -> u64 {
    // "6h0m0s"
    let (h, rest) = d.split_once('h').unwrap();
    let (m, rest) = rest.split_once('m').unwrap();
    let s = rest.trim_end_matches('s');
    h.parse::<u64>().unwrap() * 3600 + m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap()
}

#[test]
fn ecr_private_and_public_images() {
    let env = TestEnv::new();
    let param = format!("/lava/{}/reg/pw", env.realm);
    env.put_parameter(&param, "kube-secret", true);
    env.write_connections(json!([
        {"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"},
        {"conn_id": "docker/private", "type": "docker", "enabled": true, "registry": "reg.example:5000", "user": "kube", "password": param},
        {"conn_id": "docker/public", "type": "docker", "enabled": true}
    ]));

    let host = env.ecr_host();
    let (code, out, err) = kubelet(&env, &request(&format!("{host}/lava/app:1.0")));
    assert_eq!(code, 0, "{out} {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(r["kind"], "CredentialProviderResponse");
    assert_eq!(r["cacheKeyType"], "Registry");
    assert_eq!(r["auth"][&host]["username"], "AWS");
    assert_eq!(
        r["auth"][&host]["password"],
        format!("{}-auth-token", env.account)
    );
    // Half the token's 12 hours, never more.
    let secs = duration_secs(r["cacheDuration"].as_str().unwrap());
    assert!(secs <= 6 * 3600 && secs > 5 * 3600, "{secs}");

    let (code, out, _) = kubelet(&env, &request("reg.example:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_eq!(code, 0);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["auth"]["reg.example:5000"],
        json!({"username": "kube", "password": "kube-secret"})
    );
    assert_eq!(r["cacheDuration"], "0h10m0s");

    for image in [
        "busybox",
        "docker.io/library/busybox:1",
        "ghcr.io/someone/tool:2",
    ] {
        let (code, out, err) = kubelet(&env, &request(image));
        assert_eq!(code, 0, "{image}: {out} {err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["auth"], json!({}), "{image}: anonymous");
    }
}

#[test]
fn malformed_requests_fail_with_a_message() {
    let env = TestEnv::new();
    env.write_connections(json!([]));
    for (req, needle) in [
        ("not json".to_string(), "not valid JSON"),
        (json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1alpha1", "kind": "CredentialProviderRequest", "image": "x"}).to_string(), "apiVersion"),
        (json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "Other", "image": "x"}).to_string(), "kind"),
        (json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest"}).to_string(), "image"),
        (json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": "Bad Image"}).to_string(), "Bad Image"),
    ] {
        let (code, out, err) = kubelet(&env, &req);
        assert_ne!(code, 0, "{req}");
        assert!(out.contains(needle) || err.contains(needle), "{req}: {out} {err}");
    }
}

/// Nomad's docker driver with `auth { helper = "lava" }` calls `get` with `docker.io` for Hub
/// images and the bare `host:port` for others; both must answer, and a host with no spec must
/// give the exact not-found text so Nomad pulls anonymously.
#[test]
fn nomad_calls() {
    let env = TestEnv::new();
    let param = format!("/lava/{}/reg/pw", env.realm);
    env.put_parameter(&param, "nomad-secret", true);
    env.write_connections(json!([
        {"conn_id": "docker/public", "type": "docker", "enabled": true},
        {"conn_id": "docker/private", "type": "docker", "enabled": true, "registry": "reg.example:5000", "user": "nomad", "password": param}
    ]));
    let o = env.helper(&["get"], "docker.io");
    assert!(o.status.success());
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap(),
        json!({"ServerURL": "docker.io", "Username": "", "Secret": ""})
    );
    let o = env.helper(&["get"], "reg.example:5000");
    assert!(o.status.success());
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap(),
        json!({"ServerURL": "reg.example:5000", "Username": "nomad", "Secret": "nomad-secret"})
    );
    let o = env.helper(&["get"], "other.example:5000");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o).trim(),
        "credentials not found in native keychain"
    );
}

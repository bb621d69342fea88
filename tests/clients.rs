//! Real clients with only a `credHelpers` entry pointing at docker-credential-lava: skopeo
//! (containers/image) and the docker CLI + daemon, against a registry with htpasswd auth whose
//! password lives in moto's SSM.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn private_env(repo: &str, tag: &str) -> (TestEnv, String) {
    let reg = registry();
    let image = push_test_image(repo, tag);
    let mut env = TestEnv::new();
    let param = format!("/lava/{}/registry/password", env.realm);
    env.put_parameter(&param, &reg.password, true);
    env.write_connections(json!([{"conn_id": "docker/test-registry", "type": "docker",
        "enabled": true, "registry": format!("http://{}", reg.addr), "user": reg.user, "password": param}]));
    env.docker_config_with_helper(&[&reg.addr]);
    (env, image)
}

#[test]
fn skopeo_inspect_and_copy_through_the_helper() {
    let (env, image) = private_env("lava/skopeo", "v1");
    // containers/image reads credHelpers from the docker config given as its auth file.
    let authfile = env.path().join("docker-config/config.json");
    let o = env
        .command("skopeo")
        .args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo inspect: {}", stderr(&o));
    assert!(stdout(&o).contains("\"Digest\""), "{}", stdout(&o));
    assert!(
        env.call_count("GetParameter") >= 1,
        "the password came from SSM"
    );

    let dest = env.path().join("copy");
    let o = env
        .command("skopeo")
        .args(["copy", "--src-tls-verify=false", "--authfile"])
        .arg(&authfile)
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dest.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo copy: {}", stderr(&o));
    assert!(dest.join("manifest.json").exists());

    // Control: the same call with an empty auth file is refused by the registry.
    let empty = env.path().join("empty-auth.json");
    std::fs::write(&empty, "{}").unwrap();
    let bare = env.path().join("bare-docker-config");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::write(bare.join("config.json"), "{}").unwrap();
    let o = env
        .command("skopeo")
        .env("DOCKER_CONFIG", &bare)
        .args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(&empty)
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "the registry must refuse anonymous access"
    );
    let err = stderr(&o).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
}

#[test]
fn docker_pull_through_the_helper() {
    let tag = format!("pull-{}", uuid::Uuid::new_v4().simple());
    let (env, image) = private_env("lava/dockerpull", &tag);
    let rmi = || {
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    };
    rmi();

    // Control: a docker config without the helper cannot pull.
    let bare = env.path().join("bare-docker-config");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::write(bare.join("config.json"), "{}").unwrap();
    let o = env
        .command("docker")
        .env("DOCKER_CONFIG", &bare)
        .args(["pull", &image])
        .output()
        .unwrap();
    assert!(!o.status.success(), "pull without credentials must fail");
    let err = stderr(&o).to_lowercase();
    assert!(
        err.contains("no basic auth credentials") || err.contains("unauthorized"),
        "{err}"
    );

    // With only credHelpers -> lava.
    let o = env
        .command("docker")
        .args(["pull", &image])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker pull via the helper: {}",
        stderr(&o)
    );
    let o = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(o.status.success());
    // Nothing was written into the docker config: no `auths`, no secret.
    let cfg = std::fs::read_to_string(env.path().join("docker-config/config.json")).unwrap();
    assert!(
        !cfg.contains("auths") && !cfg.contains(&registry().password),
        "{cfg}"
    );
    rmi();
}

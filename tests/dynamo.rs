//! The DynamoDB connections table, against moto's DynamoDB over HTTP.

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use common::*;
use serde_json::{json, Value};

fn attr(v: &Value) -> AttributeValue {
    match v {
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::Array(a) => AttributeValue::L(a.iter().map(attr).collect()),
        Value::Object(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), attr(v))).collect())
        }
    }
}

fn table_env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set("LAVA_CONNECTIONS", "dynamodb");
    // No local default file may shadow the table.
    let xdg = env.path().join("xdg-config");
    env.set("XDG_CONFIG_HOME", xdg.to_str().unwrap());
    let ddb = env.dynamodb();
    let table = format!("lava.{}.connections", env.realm);
    block_on(async {
        ddb.create_table()
            .table_name(&table)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("conn_id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("conn_id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .expect("create table at moto");
    });
    env
}

fn put(env: &TestEnv, items: &[Value]) {
    let ddb = env.dynamodb();
    let table = format!("lava.{}.connections", env.realm);
    block_on(async {
        for item in items {
            let m: HashMap<String, AttributeValue> = item
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attr(v)))
                .collect();
            ddb.put_item()
                .table_name(&table)
                .set_item(Some(m))
                .send()
                .await
                .expect("put_item");
        }
    });
}

fn get(env: &TestEnv, server: &str) -> (i32, String) {
    let o = env.helper(&["get"], server);
    (o.status.code().unwrap_or(-1), stdout(&o))
}

#[test]
fn scan_paginates_caches_the_index_and_rescans_once_for_a_new_spec() {
    let mut env = table_env();
    let param = format!("/lava/{}/reg/pw", env.realm);
    env.put_parameter(&param, "from-ddb-spec", true);
    // 250 items: more than two Scan pages.
    let mut items: Vec<Value> = (0..240)
        .map(|i| json!({"conn_id": format!("filler/{i:03}"), "type": if i % 2 == 0 { "docker" } else { "postgres" },
                        "enabled": true, "registry": format!("filler{i}.example"), "timeout": 5}))
        .collect();
    items.push(json!({"conn_id": "docker/private", "type": "docker", "enabled": true, "registry": "reg.example:5000",
                      "user": "ddb", "password": param, "tls": false, "x-extra": {"nested": [1, 2]}}));
    items.push(
        json!({"conn_id": "docker/ecr", "type": "docker", "enabled": true, "registry": "ecr"}),
    );
    items.push(json!({"conn_id": "docker/bad", "type": "docker", "enabled": "yes", "registry": "bad.example"}));
    put(&env, &items);

    let (code, out) = get(&env, "reg.example:5000");
    assert_eq!(code, 0, "{out}");
    let a: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (a["Username"].as_str(), a["Secret"].as_str()),
        (Some("ddb"), Some("from-ddb-spec"))
    );
    let scans = env.call_count("Scan");
    assert!(
        scans >= 3,
        "expected a paginated scan, saw {scans} Scan calls"
    );

    // A malformed item is an error naming it, and does not hide the others.
    let (code, out) = get(&env, "bad.example");
    assert_eq!(code, 1);
    assert!(
        out.contains("docker/bad") && out.contains("`enabled`"),
        "{out}"
    );
    let (code, _) = get(&env, "filler4.example");
    assert_eq!(code, 0);

    // Warm: the index and the ECR token come from the cache; DynamoDB is unreachable.
    let host = env.ecr_host();
    let (code, cold) = get(&env, &host);
    assert_eq!(code, 0, "{cold}");
    let before = env.calls();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut offline = TestEnv {
        vars: env.vars.clone(),
        ..TestEnv::new()
    };
    offline.set("AWS_ENDPOINT_URL", &format!("http://{closed}"));
    offline.unset("AWS_ACCESS_KEY_ID");
    offline.unset("AWS_SECRET_ACCESS_KEY");
    let (code, warm) = get(&offline, &host);
    assert_eq!((code, warm.as_str()), (0, cold.as_str()));
    let (code, _) = get(&offline, "filler8.example");
    assert_eq!(code, 0, "public spec from the cached index");
    assert_eq!(env.calls(), before, "a warm get called AWS");

    // A spec added after the index was cached is found by one rescan.
    put(
        &env,
        &[
            json!({"conn_id": "docker/new", "type": "docker", "enabled": true, "registry": "new.example"}),
        ],
    );
    let scans = env.call_count("Scan");
    let (code, out) = get(&env, "new.example");
    assert_eq!(code, 0, "{out}");
    assert!(env.call_count("Scan") > scans, "no rescan");
    let (code, out) = get(&env, "absent.example");
    assert_eq!(
        (code, out.trim()),
        (1, "credentials not found in native keychain")
    );
    env.set(
        "LAVA_CONNECTIONS",
        &format!("dynamodb:lava.{}.connections", env.realm),
    );
    let (code, _) = get(&env, "new.example");
    assert_eq!(code, 0, "dynamodb:<table> form");
}

#[test]
fn dynamodb_is_the_default_with_a_realm_and_no_local_file() {
    let mut env = table_env();
    env.unset("LAVA_CONNECTIONS");
    put(
        &env,
        &[json!({"conn_id": "docker/public", "type": "docker", "enabled": true})],
    );
    let (code, out) = get(&env, "docker.io");
    assert_eq!(code, 0, "{out}");
    assert!(env.call_count("Scan") >= 1);
}

#[test]
fn the_shim_reads_its_connection_with_get_item() {
    let env = table_env();
    put(
        &env,
        &[json!({"conn_id": "docker/local", "type": "docker", "enabled": true, "timeout": 30})],
    );
    let tmp = tempfile::tempdir().unwrap();
    let req = json!({
        "job": {"job_id": "ddb/job", "run_id": uuid::Uuid::new_v4().to_string(), "payload": test_image(),
                "parameters": {"docker": "docker/local", "command": "echo from-dynamodb"}},
        "realm": {"realm": env.realm},
        "tmpdir": tmp.path(),
    });
    let o = run_with_stdin(
        env.command(run_bin()).args(["--pull", "missing"]),
        &req.to_string(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        std::fs::read_to_string(r["output"].as_str().unwrap()).unwrap(),
        "from-dynamodb\n"
    );
    assert_eq!(env.call_count("GetItem"), 1);
    assert_eq!(env.call_count("Scan"), 0, "the shim needs no scan");
}

//! The deployment files agree with the binary: `deploy/compose.yaml` and every manifest
//! under `deploy/k8s/` parse as YAML (PyYAML, the parser docker compose's and kubectl's
//! YAML agree with on these files), every container that runs weft names one of its
//! commands, and every flag it passes is one that command takes (as `weft <command>
//! --help` lists them). The compose file runs a leader and a standby, frontends, etcd and
//! an object store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every YAML document of `file`, as JSON.
fn documents(python: &Path, file: &Path) -> Vec<Value> {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not parse: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The flags `weft <command>` takes.
fn flags_of(command: &str) -> BTreeSet<String> {
    let out = std::process::Command::new(weft_tests::weft_bin())
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "weft {command} --help failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches([',', '.']).to_string())
        .collect()
}

/// Checks one weft invocation; returns its command.
fn check_invocation(args: &[Value], whence: &str) -> String {
    let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
    let command = args.first().copied().unwrap_or_default().to_string();
    assert!(
        ["serve", "frontend"].contains(&command.as_str()),
        "{whence}: runs `weft {command}`"
    );
    let known = flags_of(&command);
    for a in &args[1..] {
        assert!(a.starts_with("--"), "{whence}: a bare argument {a:?}");
        let flag = a.split('=').next().unwrap();
        assert!(
            known.contains(flag),
            "{whence}: `weft {command}` has no flag {flag} (it has {known:?})"
        );
    }
    command
}

fn is_weft(image: Option<&Value>) -> bool {
    image
        .and_then(Value::as_str)
        .is_some_and(|i| i.starts_with("weft:"))
}

#[test]
fn the_compose_file_and_the_kubernetes_manifests_agree_with_the_binary() {
    let Some(python) = weft_tests::python("PyYAML") else {
        return;
    };
    // docker compose.
    let compose = documents(&python, &root().join("deploy/compose.yaml"));
    let services = compose[0]["services"].as_object().expect("services");
    let mut commands = Vec::new();
    for (name, s) in services {
        if is_weft(s.get("image")) {
            let args = s["command"].as_array().expect("a command list");
            commands.push(check_invocation(args, &format!("compose service {name}")));
        }
    }
    commands.sort();
    assert_eq!(commands, ["frontend", "frontend", "serve", "serve"]);
    for needed in ["etcd", "minio"] {
        assert!(services.contains_key(needed), "compose has no {needed}");
    }
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release -p weft"));

    // Kubernetes.
    let mut k8s_commands = BTreeSet::new();
    let dir = root().join("deploy/k8s");
    let kustomization = documents(&python, &dir.join("kustomization.yaml"));
    let listed: BTreeSet<String> = kustomization[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if file == "kustomization.yaml" {
            continue;
        }
        assert!(
            listed.contains(&file),
            "{file} is not in kustomization.yaml"
        );
        for doc in documents(&python, &path) {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{file}: {doc}"
            );
            let containers = &doc["spec"]["template"]["spec"]["containers"];
            for c in containers.as_array().into_iter().flatten() {
                if is_weft(c.get("image")) {
                    let args = c["args"].as_array().expect("args");
                    k8s_commands.insert(check_invocation(args, &file));
                }
            }
        }
    }
    assert_eq!(
        k8s_commands.into_iter().collect::<Vec<_>>(),
        ["frontend", "serve"]
    );
}

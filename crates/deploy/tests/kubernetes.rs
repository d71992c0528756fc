//! The manifests of the bundled shop, read back as typed Kubernetes
//! objects and held against its contracts and placement.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed test should panic

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mote_contract::Contract;
use mote_deploy::{Autoscale, DeployError, File, Options};
use mote_placement::Placement;

fn shop() -> (Placement, Vec<Contract>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let placement = Placement::load(&root.join("placement.toml")).unwrap();
    let mut contracts = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let file = entry.unwrap().path().join("contract.toml");
        if file.is_file() {
            contracts.push(mote_contract::check_file(&file).contract.unwrap());
        }
    }
    assert!(contracts.len() >= 7, "the shop's services were found");
    (placement, contracts)
}

fn options() -> Options {
    Options {
        app: "shop".into(),
        image: "registry.example/shop:1".into(),
        replicas: 3,
        autoscale: BTreeMap::from([(
            "front".to_string(),
            Autoscale {
                min: 2,
                max: 8,
                cpu_percent: 70,
            },
        )]),
    }
}

fn file<'a>(files: &'a [File], name: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} was not written"))
        .text
}

#[test]
fn every_host_gets_a_deployment_and_a_service_that_fit_its_services() {
    let (placement, contracts) = shop();
    let files = mote_deploy::kubernetes(&placement, &contracts, &options()).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "placement.configmap.json",
            "front.deployment.json",
            "front.service.json",
            "front.autoscaler.json",
            "back.deployment.json",
            "back.service.json",
        ]
    );
    for host in &placement.hosts {
        let deployment: Deployment =
            serde_json::from_str(file(&files, &format!("{}.deployment.json", host.name))).unwrap();
        let service: Service =
            serde_json::from_str(file(&files, &format!("{}.service.json", host.name))).unwrap();
        let name = format!("shop-{}", host.name);
        assert_eq!(deployment.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(service.metadata.name.as_deref(), Some(name.as_str()));
        let spec = deployment.spec.unwrap();
        let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(spec.selector.match_labels.as_ref(), Some(&pod_labels));
        let service_spec = service.spec.unwrap();
        assert_eq!(service_spec.selector.as_ref(), Some(&pod_labels));
        let ports: Vec<(String, i32)> = service_spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port))
            .collect();
        assert_eq!(ports, [("http".into(), 8080), ("peer".into(), 9443)]);
        // The autoscaler owns the front's replicas.
        let autoscaled = host.name == "front";
        assert_eq!(spec.replicas, (!autoscaled).then_some(3), "{}", host.name);

        let pod = spec.template.spec.unwrap();
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some("registry.example/shop:1"));
        let args = container.args.clone().unwrap();
        let after = |flag: &str| {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1].clone()
        };
        assert_eq!(after("--host"), host.name);
        assert_eq!(after("--tls"), "/etc/mote/tls");
        assert!(args.contains(&"--require-attestation".to_string()));
        // The back serves the inventory's services: its stores are the
        // app's PostgreSQL, its URL from the store Secret.
        let stateful = host.name == "back";
        let store = args
            .iter()
            .position(|a| a == "--store")
            .map(|at| args[at + 1].clone());
        let env = container.env.clone().unwrap_or_default();
        if stateful {
            assert_eq!(store.as_deref(), Some("$(MOTE_STORE)"));
            let from = env
                .iter()
                .find(|e| e.name == "MOTE_STORE")
                .and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone())
                .unwrap();
            assert_eq!(
                (from.name.as_str(), from.key.as_str()),
                ("shop-store", "url")
            );
            assert!(
                mote_deploy::store_secret_command("shop")
                    .contains("secret generic shop-store --from-literal=url=")
            );
        } else {
            assert_eq!(store, None, "{}", host.name);
            assert!(env.is_empty(), "{}", host.name);
        }
        let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.port, IntOrString::String("http".into()));
            get.path.clone().unwrap()
        };
        assert_eq!(probe_path(&container.readiness_probe), "/readyz");
        assert_eq!(probe_path(&container.liveness_probe), "/healthz");

        // Sized from the limits of the services placed on this host.
        let placed: Vec<&Contract> = contracts
            .iter()
            .filter(|c| placement.host_of(c.service.name.as_str()).unwrap().name == host.name)
            .collect();
        let longest_ms = placed
            .iter()
            .map(|c| c.limits.timeout_ms.unwrap_or(1000))
            .max()
            .unwrap();
        let largest_mib = placed
            .iter()
            .map(|c| c.limits.memory_mib.unwrap_or(64))
            .max()
            .unwrap();
        assert_eq!(
            pod.termination_grace_period_seconds,
            Some(i64::try_from(longest_ms.div_ceil(1000)).unwrap() + 5)
        );
        let resources = container.resources.as_ref().unwrap();
        assert_eq!(
            resources.limits.as_ref().unwrap()["memory"].0,
            format!("{}Mi", 128 + 4 * largest_mib)
        );
        assert_eq!(
            resources.requests.as_ref().unwrap()["memory"].0,
            format!("{}Mi", 128 + largest_mib)
        );

        // The host's certificates, from its own Secret.
        let volumes = pod.volumes.unwrap();
        let secret = volumes
            .iter()
            .find_map(|v| v.secret.as_ref())
            .expect("a Secret volume");
        assert_eq!(
            secret.secret_name.as_deref(),
            Some(format!("shop-{}-tls", host.name).as_str())
        );
        let keys: Vec<&str> = secret
            .items
            .as_ref()
            .unwrap()
            .iter()
            .map(|k| k.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "ca.pem",
                &format!("{}.pem", host.name),
                &format!("{}.key", host.name)
            ]
        );
    }
    let autoscaler: HorizontalPodAutoscaler =
        serde_json::from_str(file(&files, "front.autoscaler.json")).unwrap();
    let spec = autoscaler.spec.unwrap();
    assert_eq!(spec.scale_target_ref.name, "shop-front");
    assert_eq!(spec.scale_target_ref.kind, "Deployment");
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 8));
}

#[test]
fn the_cluster_placement_reaches_each_host_at_its_service_over_mutual_tls() {
    let (placement, contracts) = shop();
    let files = mote_deploy::kubernetes(&placement, &contracts, &options()).unwrap();
    let config: ConfigMap = serde_json::from_str(file(&files, "placement.configmap.json")).unwrap();
    assert_eq!(config.metadata.name.as_deref(), Some("shop-placement"));
    let text = config.data.unwrap()["placement.toml"].clone();
    let cluster =
        mote_placement::parse(mote_contract::SourceFile::new("placement.toml", &text)).unwrap();
    assert!(cluster.mutual_tls());
    let names = contracts.iter().map(|c| c.service.name.as_str());
    assert!(cluster.check(names).is_empty(), "{text}");
    for contract in &contracts {
        let name = contract.service.name.as_str();
        assert_eq!(
            cluster.host_of(name).unwrap().name,
            placement.host_of(name).unwrap().name,
            "{name} stays on its host"
        );
    }
    for host in &cluster.hosts {
        assert_eq!(host.url, format!("https://shop-{}:9443", host.name));
    }
}

#[test]
fn names_kubernetes_refuses_are_refused_here() {
    let (placement, contracts) = shop();
    for app in ["Shop", "-shop", "shop-", "", &"s".repeat(60)] {
        let options = Options {
            app: app.to_string(),
            ..options()
        };
        assert!(
            matches!(
                mote_deploy::kubernetes(&placement, &contracts, &options),
                Err(DeployError::Name { .. })
            ),
            "{app:?}"
        );
    }
    assert_eq!(mote_deploy::app_name("My Shop"), "my-shop");
    assert_eq!(mote_deploy::app_name("9lives"), "app-9lives");
    assert_eq!(mote_deploy::app_name("--"), "app");
    assert!(mote_deploy::app_name(&"x".repeat(100)).len() <= 40);
}

#[test]
fn the_image_recipe_trusts_the_given_key_and_carries_no_build_tree() {
    let dockerfile = mote_deploy::dockerfile("ab12");
    assert!(dockerfile.contains("'ab12' > /etc/mote/trusted.pub"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("ENTRYPOINT [\"mote\"]"));
    let ignore = mote_deploy::dockerignore();
    assert!(ignore.lines().any(|l| l == "target"));
    for kept in ["mote-components", "mote-cache", "mote-attestations"] {
        assert!(ignore.lines().any(|l| l == format!("!target/{kept}")));
    }
}

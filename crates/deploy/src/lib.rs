//! What an orchestrator needs to run a mote app split by a placement:
//! Kubernetes manifests built from typed API objects (well-formed by
//! construction), and an image recipe that packages the `mote` binary
//! with the app's prebuilt, attested components, so that a cluster never
//! compiles source.
//!
//! Per host of the placement: a Deployment (its probes on `/readyz` and
//! `/healthz`, memory derived from the services' limits, a termination
//! grace period that outlasts the longest call), a Service named
//! `APP-HOST`, and, where asked, a HorizontalPodAutoscaler. One ConfigMap
//! holds the placement as the cluster sees it: every host's URL becomes
//! its Service's in-cluster name, over mutual TLS. Each host mounts its
//! certificates from a Secret `APP-HOST-tls` made from `mote keygen
//! --app`'s files; [`secret_command`] says how. A host serving a stateful
//! service keeps its stores in the app's PostgreSQL, whose URL it reads
//! from the Secret `APP-store` ([`store_secret_command`]).
//!
//! Architecture invariant: turns contracts and a placement into text; runs
//! nothing and reaches no cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecretKeySelector, SecretVolumeSource, SecurityContext, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mote_contract::Contract;
use mote_placement::Placement;
use mote_runtime::ResolvedLimits;

/// The port of the public address inside a pod.
pub const PUBLIC_PORT: u16 = 8080;
/// The port of the peer address (mutual TLS) inside a pod.
pub const PEER_PORT: u16 = 9443;
/// Where the image holds the app.
pub const APP_DIR: &str = "/app";
/// Where a pod mounts the placement.
const PLACEMENT_DIR: &str = "/etc/mote/placement";
/// Where a pod mounts its host's certificates.
const TLS_DIR: &str = "/etc/mote/tls";
/// Where the image holds the public key whose attestations it trusts.
const TRUSTED_KEY: &str = "/etc/mote/trusted.pub";
/// Threads running calls in each pod; memory is sized for this many
/// instances at once.
const CALL_THREADS: u64 = 4;
/// The memory a host needs beside its instances: the runtime, compiled
/// code, connections.
const BASE_MEMORY_MIB: u64 = 128;
/// Seconds a pod is given to finish, beyond its longest call: draining
/// connections and the endpoints' update.
const GRACE_MARGIN_SECONDS: i64 = 5;
/// The unprivileged user the image runs as.
const RUN_AS: i64 = 65532;

/// Why manifests cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A name does not fit Kubernetes' rules.
    #[error("`{name}` cannot name a Kubernetes object: {why}")]
    Name {
        /// The name.
        name: String,
        /// The rule it breaks.
        why: &'static str,
    },
    /// A host serves no service of the app.
    #[error("host `{0}` serves no service of the app")]
    EmptyHost(String),
    /// An object did not serialise.
    #[error("cannot write a manifest: {0}")]
    Json(#[from] serde_json::Error),
}

/// Autoscaling of one host's pods on CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscale {
    /// Fewest pods.
    pub min: i32,
    /// Most pods.
    pub max: i32,
    /// The average CPU use, in percent of the request, to scale at.
    pub cpu_percent: i32,
}

/// What the manifests are made for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The app's name: the prefix of every object's name, and its
    /// `app.kubernetes.io/name` label.
    pub app: String,
    /// The image built from [`dockerfile`].
    pub image: String,
    /// Pods per host, without autoscaling.
    pub replicas: i32,
    /// Autoscaling per host name; a host not named keeps `replicas`.
    pub autoscale: BTreeMap<String, Autoscale>,
}

/// One file of output: its name and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The file name, in the output folder.
    pub name: String,
    /// Its contents.
    pub text: String,
}

/// Checks `name` against RFC 1035 labels, as Service names must be.
fn dns_label(name: &str) -> Result<(), DeployError> {
    let why = if name.is_empty() || name.len() > 63 {
        Some("it must be 1 to 63 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("it may hold only lowercase letters, digits and `-`")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.ends_with('-') {
        Some("it must start with a letter and not end with `-`")
    } else {
        None
    };
    match why {
        Some(why) => Err(DeployError::Name {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// `name` made into a label for Kubernetes: lowercase, other characters
/// as `-`, at most 40 characters (so that `APP-HOST-tls` fits).
pub fn app_name(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label = label.trim_matches('-').chars().take(40).collect();
    let label = label.trim_end_matches('-').to_string();
    if label.starts_with(|c: char| c.is_ascii_lowercase()) {
        label
    } else {
        format!("app-{label}").trim_end_matches('-').to_string()
    }
}

/// The Service (and object) name of `host` in `app`.
pub fn object_name(app: &str, host: &str) -> String {
    format!("{app}-{host}")
}

/// The Secret holding the connection URL of the app's PostgreSQL stores
/// (key `url`), for the hosts that serve a stateful service.
pub fn store_secret_name(app: &str) -> String {
    format!("{app}-store")
}

/// The `kubectl` command that makes the store Secret, for a URL the
/// operator fills in.
pub fn store_secret_command(app: &str) -> String {
    format!(
        "kubectl create secret generic {} --from-literal=url='postgres://USER:PASSWORD@HOST/DATABASE'",
        store_secret_name(app)
    )
}

/// The environment variable a stateful host reads its store URL from.
const STORE_VARIABLE: &str = "MOTE_STORE";

/// The Secret holding `host`'s certificates.
pub fn secret_name(app: &str, host: &str) -> String {
    format!("{app}-{host}-tls")
}

/// The `kubectl` command that makes `host`'s Secret from the files `mote
/// keygen --app` wrote to `tls_dir`.
pub fn secret_command(app: &str, host: &str, tls_dir: &str) -> String {
    format!(
        "kubectl create secret generic {} --from-file={tls_dir}/{} --from-file={tls_dir}/{host}.pem --from-file={tls_dir}/{host}.key",
        secret_name(app, host),
        mote_tls::AUTHORITY_CERTIFICATE
    )
}

/// The placement as the pods see it: each host at its Service's name,
/// over mutual TLS; the same services on the same hosts.
pub fn cluster_placement(placement: &Placement, app: &str) -> String {
    let mut text =
        String::from("# Written by `mote deploy kubernetes`: the placement inside the cluster.\n");
    for host in &placement.hosts {
        text.push_str(&format!(
            "\n[host.{}]\nurl = \"https://{}:{PEER_PORT}\"\n",
            host.name,
            object_name(app, &host.name)
        ));
        if host.rest {
            text.push_str("rest = true\n");
        }
        if !host.services.is_empty() || !host.rest {
            let services: Vec<String> = host
                .services
                .iter()
                .map(|(s, _)| format!("\"{s}\""))
                .collect();
            text.push_str(&format!("services = [{}]\n", services.join(", ")));
        }
    }
    text
}

fn labels(app: &str, host: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), app.to_string()),
        ("app.kubernetes.io/component".to_string(), host.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "mote".to_string(),
        ),
    ])
}

fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    }
}

fn probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".to_string()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// What one host's pods need: memory for the runtime and for as many
/// instances as run at once, each at the largest memory limit of the
/// host's services; and time to finish the longest call.
struct Sizing {
    memory_request_mib: u64,
    memory_limit_mib: u64,
    grace_seconds: i64,
}

fn sizing(contracts: &[&Contract]) -> Sizing {
    let defaults = ResolvedLimits::default();
    let limits: Vec<ResolvedLimits> = contracts
        .iter()
        .map(|c| ResolvedLimits::resolve(&c.limits, &defaults))
        .collect();
    let instance_mib = limits
        .iter()
        .map(|l| l.memory_bytes.div_ceil(1024 * 1024))
        .max()
        .unwrap_or(0);
    let longest = limits.iter().map(|l| l.timeout).max().unwrap_or_default();
    Sizing {
        memory_request_mib: BASE_MEMORY_MIB + instance_mib,
        memory_limit_mib: BASE_MEMORY_MIB + CALL_THREADS * instance_mib,
        grace_seconds: i64::try_from(longest.as_millis().div_ceil(1000))
            .unwrap_or(i64::MAX / 2)
            .saturating_add(GRACE_MARGIN_SECONDS),
    }
}

fn deployment(
    app: &str,
    host: &str,
    sizing: &Sizing,
    stateful: bool,
    options: &Options,
) -> Deployment {
    let name = object_name(app, host);
    let labels = labels(app, host);
    let mut args = [
        "up",
        APP_DIR,
        "--addr",
        &format!("0.0.0.0:{PUBLIC_PORT}"),
        "--admin-addr",
        "127.0.0.1:8081",
        "--placement",
        &format!("{PLACEMENT_DIR}/placement.toml"),
        "--host",
        host,
        "--peer-addr",
        &format!("0.0.0.0:{PEER_PORT}"),
        "--tls",
        TLS_DIR,
        "--require-attestation",
        "--trusted-key",
        TRUSTED_KEY,
        "--call-threads",
        &CALL_THREADS.to_string(),
    ]
    .map(str::to_string)
    .to_vec();
    // A pod's files die with it and every replica would have its own:
    // stateful hosts keep their stores in the app's PostgreSQL, whose URL
    // Kubernetes expands into the arguments from the store Secret.
    let env = stateful.then(|| {
        args.extend(["--store".to_string(), format!("$({STORE_VARIABLE})")]);
        vec![EnvVar {
            name: STORE_VARIABLE.to_string(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: store_secret_name(app),
                    key: "url".to_string(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]
    });
    let memory = |mib: u64| Quantity(format!("{mib}Mi"));
    let container = Container {
        name: "mote".to_string(),
        image: Some(options.image.clone()),
        args: Some(args),
        env,
        ports: Some(vec![
            ContainerPort {
                name: Some("http".to_string()),
                container_port: i32::from(PUBLIC_PORT),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("peer".to_string()),
                container_port: i32::from(PEER_PORT),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(probe("/readyz", 5)),
        liveness_probe: Some(probe("/healthz", 10)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("500m".to_string())),
                ("memory".to_string(), memory(sizing.memory_request_mib)),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                memory(sizing.memory_limit_mib),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "placement".to_string(),
                mount_path: PLACEMENT_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tls".to_string(),
                mount_path: TLS_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let tls_files = [
        mote_tls::AUTHORITY_CERTIFICATE.to_string(),
        format!("{host}.pem"),
        format!("{host}.key"),
    ];
    let pod = PodSpec {
        containers: vec![container],
        termination_grace_period_seconds: Some(sizing.grace_seconds),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            run_as_non_root: Some(true),
            ..PodSecurityContext::default()
        }),
        volumes: Some(vec![
            Volume {
                name: "placement".to_string(),
                config_map: Some(ConfigMapVolumeSource {
                    name: format!("{app}-placement"),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "tls".to_string(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret_name(app, host)),
                    default_mode: Some(0o400),
                    items: Some(
                        tls_files
                            .iter()
                            .map(|file| KeyToPath {
                                key: file.clone(),
                                path: file.clone(),
                                ..KeyToPath::default()
                            })
                            .collect(),
                    ),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    Deployment {
        metadata: meta(&name, &labels),
        spec: Some(DeploymentSpec {
            replicas: (!options.autoscale.contains_key(host)).then_some(options.replicas),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn service(app: &str, host: &str) -> Service {
    let name = object_name(app, host);
    let labels = labels(app, host);
    let port = |name: &str, port: u16| ServicePort {
        name: Some(name.to_string()),
        port: i32::from(port),
        target_port: Some(IntOrString::String(name.to_string())),
        ..ServicePort::default()
    };
    Service {
        metadata: meta(&name, &labels),
        spec: Some(ServiceSpec {
            selector: Some(labels),
            ports: Some(vec![port("http", PUBLIC_PORT), port("peer", PEER_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn autoscaler(app: &str, host: &str, autoscale: Autoscale) -> HorizontalPodAutoscaler {
    let name = object_name(app, host);
    HorizontalPodAutoscaler {
        metadata: meta(&name, &labels(app, host)),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name,
            },
            min_replicas: Some(autoscale.min),
            max_replicas: autoscale.max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_string(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_string(),
                    target: MetricTarget {
                        type_: "Utilization".to_string(),
                        average_utilization: Some(autoscale.cpu_percent),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

/// The manifests of the app whose services are `contracts`, split as
/// `placement` says (already checked against them): a ConfigMap with the
/// cluster's placement, and per host a Deployment, a Service and, where
/// `options` asks, an autoscaler. JSON, which `kubectl apply -f` reads.
pub fn kubernetes(
    placement: &Placement,
    contracts: &[Contract],
    options: &Options,
) -> Result<Vec<File>, DeployError> {
    dns_label(&options.app)?;
    let mut files = Vec::new();
    let config = ConfigMap {
        metadata: meta(
            &format!("{}-placement", options.app),
            &BTreeMap::from([
                ("app.kubernetes.io/name".to_string(), options.app.clone()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "mote".to_string(),
                ),
            ]),
        ),
        data: Some(BTreeMap::from([(
            "placement.toml".to_string(),
            cluster_placement(placement, &options.app),
        )])),
        ..ConfigMap::default()
    };
    files.push(File {
        name: "placement.configmap.json".to_string(),
        text: json(&config)?,
    });
    for host in &placement.hosts {
        let name = object_name(&options.app, &host.name);
        dns_label(&name)?;
        dns_label(&secret_name(&options.app, &host.name))?;
        let placed: Vec<&Contract> = contracts
            .iter()
            .filter(|c| {
                placement
                    .host_of(c.service.name.as_str())
                    .is_some_and(|h| h.name == host.name)
            })
            .collect();
        if placed.is_empty() {
            return Err(DeployError::EmptyHost(host.name.clone()));
        }
        let sizing = sizing(&placed);
        let stateful = placed.iter().any(|c| !c.stores.is_empty());
        files.push(File {
            name: format!("{}.deployment.json", host.name),
            text: json(&deployment(
                &options.app,
                &host.name,
                &sizing,
                stateful,
                options,
            ))?,
        });
        files.push(File {
            name: format!("{}.service.json", host.name),
            text: json(&service(&options.app, &host.name))?,
        });
        if let Some(autoscale) = options.autoscale.get(&host.name) {
            files.push(File {
                name: format!("{}.autoscaler.json", host.name),
                text: json(&autoscaler(&options.app, &host.name, *autoscale))?,
            });
        }
    }
    Ok(files)
}

fn json(value: &impl serde::Serialize) -> Result<String, DeployError> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// The image recipe: Debian's slim image, the `mote` binary, the app
/// folder with its built components, compiled code and attestations (no
/// sources or build tree, see [`dockerignore`]), and the public key
/// `trusted_key_hex` whose attestations the hosts trust. Build it with
/// the app folder as context, after `mote verify APP --key KEY` has
/// built, verified and attested every service, and with the `mote`
/// binary copied into the app folder.
pub fn dockerfile(trusted_key_hex: &str) -> String {
    format!(
        "# Written by `mote deploy kubernetes`. Build with the app folder as the context,\n\
         # after `mote verify APP --key KEY` (it builds and attests every service) and\n\
         # with the `mote` binary copied into the app folder:\n\
         #   docker build -f OUTDIR/Dockerfile APP\n\
         # The hosts run `mote up --require-attestation`: they serve only what the key\n\
         # below signed, and never compile source.\n\
         FROM debian:bookworm-slim\n\
         COPY mote /usr/local/bin/mote\n\
         COPY . {APP_DIR}\n\
         RUN rm -f {APP_DIR}/mote && mkdir -p /etc/mote && printf '%s\\n' '{trusted_key_hex}' > {TRUSTED_KEY} \\\n\
         \x20&& chown -R {RUN_AS}:{RUN_AS} {APP_DIR}/target\n\
         USER {RUN_AS}:{RUN_AS}\n\
         EXPOSE {PUBLIC_PORT} {PEER_PORT}\n\
         ENTRYPOINT [\"mote\"]\n"
    )
}

/// What the image leaves out of the app folder: everything of the build
/// tree but the components, the compiled code and the attestations.
/// BuildKit reads it as `Dockerfile.dockerignore` beside the Dockerfile.
pub fn dockerignore() -> String {
    "target\n!target/mote-components\n!target/mote-cache\n!target/mote-attestations\n**/src\n"
        .to_string()
}

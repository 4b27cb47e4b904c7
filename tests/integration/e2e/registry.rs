//! Registry login checks and the proof of format: the consolidated source's `.dockerconfigjson`,
//! decrypted and written as-is to `$DOCKER_CONFIG/config.json`, is what real clients (crane, helm)
//! pull with — before and after a rotation, for a source that merges two registries.
//!
//! Each scenario runs twice: against registries with htpasswd basic auth, and with the first
//! registry on distribution token auth (`auth.token`, with devkit's [`TokenServer`] as the realm),
//! so the login check's Bearer flow and the clients' token requests meet a real registry that
//! verifies the tokens; the token variant's source merges a token registry and a basic one.
//!
//! [`TokenServer`]: ocitool_devkit::live::TokenServer

use super::{LiveDir, started};
use crate::support::{Cmd, Fleet, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ocitool_adapters::registry::{AuthScheme, LoginOptions, LoginStatus, NetErrorKind};
use ocitool_core::creds::{Credentials, RegistryAuth};
use ocitool_devkit::fleetgen::{
    ClusterSpec, FleetSpec, NamespaceVia, Registry as Account, ResourceSpelling, SecretForm,
    ServiceSpec,
};
use ocitool_devkit::live::{Pki, Registry, free_port, tool};
use ocitool_orchestration::login::{self, Verdict};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USER: &str = "fleet-bot";
const PASSWORD: &str = "e2e-first-robot-Pw7Qx2Lm";
const ROTATED_USER: &str = "fleet-bot-rotated";
const ROTATED_PASSWORD: &str = "e2e-rotated-robot-Zk9Tn4Wc";
const TOOLS_USER: &str = "tools-bot";
const TOOLS_PASSWORD: &str = "e2e-tools-robot-Hq3Vb8Rs";
const WRONG_PASSWORD: &str = "e2e-wrong-password-Xy1Uj6";
const SOURCE: &str = "live/applications/overlays/e2e/flux-system/oci-creds.yaml";

fn all_passwords() -> Vec<String> {
    [PASSWORD, ROTATED_PASSWORD, TOOLS_PASSWORD, WRONG_PASSWORD]
        .map(String::from)
        .to_vec()
}

fn options(ca: Option<&Path>) -> LoginOptions {
    LoginOptions {
        timeout: Duration::from_secs(20),
        extra_ca_file: ca.map(Path::to_path_buf),
        ..LoginOptions::default()
    }
}

/// How the test registry under scrutiny authenticates.
#[derive(Clone, Copy, Debug)]
enum Auth {
    /// htpasswd: `WWW-Authenticate: Basic`.
    Basic,
    /// distribution token auth: `WWW-Authenticate: Bearer realm=…`, tokens from the harness's
    /// token server.
    Token,
}

impl Auth {
    #[track_caller]
    fn start(self, dir: &Path, pki: &Pki, users: &[(&str, &str)]) -> Registry {
        let registry = match self {
            Auth::Basic => Registry::start_with_users(dir, pki, users),
            Auth::Token => Registry::start_with_token(dir, pki, users),
        }
        .unwrap();
        started(&registry.describe());
        registry
    }

    /// The scheme ocitool's login check must report.
    fn scheme(self) -> AuthScheme {
        match self {
            Auth::Basic => AuthScheme::Basic,
            Auth::Token => AuthScheme::Bearer,
        }
    }
}

/// How ocitool's output names the scheme a registry was started with.
fn shown_scheme(registry: &Registry) -> &'static str {
    if registry.token.is_some() {
        "bearer token"
    } else {
        "basic"
    }
}

/// The token server's log lines for `account` answered with `status` (none for a basic-auth
/// registry): proof that a client went through the Bearer flow.
fn token_requests(registry: &Registry, account: &str, status: u16) -> Vec<String> {
    let suffix = format!("account={account:?} -> {status}");
    registry
        .token
        .iter()
        .flat_map(|t| t.log())
        .filter(|line| line.ends_with(&suffix))
        .collect()
}

#[test]
#[ignore = "live tier: make e2e"]
fn login_check_accepts_rejects_and_finds_nothing_listening() {
    login_check(Auth::Basic);
}

#[test]
#[ignore = "live tier: make e2e"]
fn token_auth_login_check_accepts_and_rejects_through_the_bearer_flow() {
    login_check(Auth::Token);
}

fn login_check(auth: Auth) {
    let live = LiveDir::new();
    let registry = auth.start(live.path(), &live.pki, &[(USER, PASSWORD)]);
    let closed = format!("127.0.0.1:{}", free_port().unwrap());
    let mut good = Credentials::new("e2e");
    good.set(&registry.host(), RegistryAuth::new(USER, PASSWORD));
    good.set(&closed, RegistryAuth::new(USER, PASSWORD));
    let mut wrong = Credentials::new("e2e");
    wrong.set(&registry.host(), RegistryAuth::new(USER, WRONG_PASSWORD));
    let with_ca = options(Some(&live.pki.ca_cert));

    let checks = login::check(&good, None, &with_ca);
    let of = |host: &str| checks.iter().find(|c| c.registry == host).unwrap();
    let accepted = of(&registry.host());
    assert_eq!(
        (
            accepted.verdict(),
            &accepted.result.status,
            accepted.result.scheme
        ),
        (Verdict::LogsIn, &LoginStatus::LoggedIn, auth.scheme()),
        "{accepted}"
    );
    let nothing = of(&closed);
    assert!(
        matches!(
            nothing.result.status,
            LoginStatus::Unreachable {
                kind: NetErrorKind::ConnectionRefused,
                ..
            }
        ) && nothing.verdict() == Verdict::Unknown,
        "{nothing}"
    );

    let rejected = login::check(&wrong, None, &with_ca).remove(0);
    assert_eq!(
        (
            rejected.verdict(),
            &rejected.result.status,
            rejected.result.scheme
        ),
        (
            Verdict::Rejected,
            &LoginStatus::Rejected { status: 401 },
            auth.scheme()
        ),
        "{rejected}"
    );
    if let Auth::Token = auth {
        // Both answers came from the token server: one token issued, one refusal.
        assert_eq!(token_requests(&registry, USER, 200).len(), 1);
        assert_eq!(token_requests(&registry, "", 401).len(), 1);
    }
    // The harness CA is what makes the registry trusted: without it, TLS fails.
    let untrusted = login::check(&good, Some(&registry.host()), &options(None)).remove(0);
    assert!(
        matches!(
            untrusted.result.status,
            LoginStatus::Unreachable {
                kind: NetErrorKind::Tls,
                ..
            }
        ),
        "{untrusted}"
    );

    let shown = format!(
        "{checks:?}\n{rejected:?}\n{untrusted:?}\n{good:?}\n{good}\n{}",
        checks
            .iter()
            .chain([&rejected, &untrusted])
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for secret in [PASSWORD, WRONG_PASSWORD] {
        assert!(
            !shown.contains(secret),
            "a password in Debug/Display:\n{shown}"
        );
        let basic = BASE64.encode(format!("{USER}:{secret}"));
        assert!(!shown.contains(&basic), "an auth token in Debug/Display");
    }
}

/// The fleet: one cluster whose three services pull from two registries (`app` and `charts`
/// from the first, as a dockerconfigjson and as a basic-auth Secret, `tools` from the second), so
/// the consolidated source merges both.
fn fleet_spec(first: &Registry, second: &Registry) -> FleetSpec {
    let service = |name: &str, namespace: &str, form, registries: Vec<Account>| ServiceSpec {
        name: name.into(),
        namespace: namespace.into(),
        via: NamespaceVia::FluxTargetNamespace,
        form,
        registries,
        spelling: ResourceSpelling::Plain,
        encrypted: true,
        crlf: false,
    };
    let first = Account::new(&first.host(), USER, PASSWORD);
    let second = Account::new(&second.host(), TOOLS_USER, TOOLS_PASSWORD);
    FleetSpec {
        clusters: vec![ClusterSpec {
            customer: Some("live".into()),
            name: "e2e".into(),
            deploys_reflector: true,
            services: vec![
                service(
                    "app",
                    "team-a",
                    SecretForm::DockerConfigData,
                    vec![first.clone()],
                ),
                service("charts", "team-a", SecretForm::BasicAuth, vec![first]),
                service(
                    "tools",
                    "team-b",
                    SecretForm::DockerConfigStringData,
                    vec![second],
                ),
            ],
        }],
    }
}

/// A `DOCKER_CONFIG` directory whose `config.json` is `bytes`, unchanged.
fn docker_config(live: &LiveDir, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = live.sub(name);
    std::fs::write(dir.join("config.json"), bytes).unwrap();
    dir
}

/// A config.json written by the test itself (for pushing, and for the wrong-password control).
fn config_json(entries: &[(&str, &str, &str)]) -> Vec<u8> {
    let auths: serde_json::Map<_, _> = entries
        .iter()
        .map(|(host, user, password)| {
            let auth = BASE64.encode(format!("{user}:{password}"));
            (host.to_string(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    serde_json::json!({ "auths": auths })
        .to_string()
        .into_bytes()
}

/// The decrypted source's `.dockerconfigjson` bytes, exactly as Flux would hand them to a client.
#[track_caller]
fn source_dockerconfigjson(fleet: &Fleet) -> Vec<u8> {
    let doc: serde_yaml::Value = serde_yaml::from_str(&fleet.decrypt(SOURCE)).unwrap();
    assert_eq!(doc["type"], "kubernetes.io/dockerconfigjson");
    BASE64
        .decode(doc["data"][".dockerconfigjson"].as_str().unwrap())
        .unwrap()
}

/// The real clients, pointed at one docker config and trusting the harness CA.
struct Clients<'a> {
    live: &'a LiveDir,
    docker_config: PathBuf,
}

impl Clients<'_> {
    /// crane (go-containerregistry) reads `$DOCKER_CONFIG/config.json`; Go trusts `SSL_CERT_FILE`.
    fn crane(&self, args: &[&str]) -> Command {
        let mut command = Command::new(tool("crane").unwrap());
        command
            .args(args)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("SSL_CERT_FILE", self.live.ca());
        command
    }

    /// helm with the docker config as its registry config and its own homes in the temp dir.
    fn helm(&self, args: &[&str]) -> Command {
        let mut command = Command::new(tool("helm").unwrap());
        command
            .arg("--registry-config")
            .arg(self.docker_config.join("config.json"))
            .args(args)
            .env("HELM_CONFIG_HOME", self.live.sub("helm-config"))
            .env("HELM_CACHE_HOME", self.live.sub("helm-cache"))
            .env("HELM_DATA_HOME", self.live.sub("helm-data"));
        command
    }

    /// Pull both artifacts and the chart; every file must arrive intact.
    #[track_caller]
    fn pull_everything(&self, first: &Registry, second: &Registry, round: &str) {
        let tarball = self.live.path().join(format!("{round}-app.tar"));
        succeed(self.crane(&[
            "pull",
            &format!("{}/e2e/app:v1", first.host()),
            tarball.to_str().unwrap(),
        ]));
        assert!(std::fs::metadata(&tarball).unwrap().len() > 0);
        let exported =
            succeed(self.crane(&["export", &format!("{}/e2e/tools:v1", second.host()), "-"]));
        assert!(
            contains(&exported, b"hello from the tools registry"),
            "crane export did not return the pushed layer"
        );
        let into = self.live.sub(&format!("{round}-charts"));
        succeed(self.helm(&[
            "pull",
            &format!("oci://{}/charts/app", first.host()),
            "--version",
            "1.0.0",
            "--ca-file",
            self.live.ca(),
            "-d",
            into.to_str().unwrap(),
        ]));
        assert!(into.join("app-1.0.0.tgz").is_file());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Run a client; its stdout, or a panic with its stderr.
#[track_caller]
fn succeed(mut command: Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Push `e2e/app:v1` and chart `app` 1.0.0 (what the fleet's HelmRelease `app` pulls from its
/// HelmRepository `oci://HOST/charts`) to `first`, and `e2e/tools:v1` to `second`.
fn push_fixtures(live: &LiveDir, first: &Registry, second: &Registry) {
    let pusher = Clients {
        live,
        docker_config: docker_config(
            live,
            "push-config",
            &config_json(&[
                (&first.host(), USER, PASSWORD),
                (&second.host(), TOOLS_USER, TOOLS_PASSWORD),
            ]),
        ),
    };
    for (registry, repo, text) in [
        (first, "e2e/app:v1", "hello from the app registry\n"),
        (second, "e2e/tools:v1", "hello from the tools registry\n"),
    ] {
        let layer = live.sub(&format!("layer-{}", registry.port));
        std::fs::write(layer.join("hello.txt"), text).unwrap();
        let tarball = live.path().join(format!("layer-{}.tar.gz", registry.port));
        let status = Command::new("tar")
            .arg("-C")
            .arg(&layer)
            .arg("-czf")
            .arg(&tarball)
            .arg("hello.txt")
            .status()
            .unwrap();
        assert!(status.success());
        let reference = format!("{}/{repo}", registry.host());
        succeed(pusher.crane(&["append", "-f", tarball.to_str().unwrap(), "-t", &reference]));
    }
    let chart_dir = live.path().join("app");
    succeed(pusher.helm(&["create", chart_dir.to_str().unwrap()]));
    succeed(pusher.helm(&[
        "package",
        chart_dir.to_str().unwrap(),
        "--version",
        "1.0.0",
        "-d",
        live.path().to_str().unwrap(),
    ]));
    succeed(pusher.helm(&[
        "push",
        live.path().join("app-1.0.0.tgz").to_str().unwrap(),
        &format!("oci://{}/charts", first.host()),
        "--ca-file",
        live.ca(),
    ]));
}

#[test]
#[ignore = "live tier: make e2e"]
fn consolidated_and_rotated_sources_pull_with_crane_and_helm() {
    sources_pull_with_crane_and_helm(Auth::Basic);
}

/// The first registry on token auth, the second on basic auth: one source merges both.
#[test]
#[ignore = "live tier: make e2e"]
fn token_auth_sources_pull_with_crane_and_helm() {
    sources_pull_with_crane_and_helm(Auth::Token);
}

/// Consolidate and rotate a fleet whose first registry authenticates by `auth` (the second
/// always by basic auth), and pull with the source's dockerconfigjson as-is after each.
fn sources_pull_with_crane_and_helm(auth: Auth) {
    let live = LiveDir::new();
    // The first registry knows the credential before and after the rotation.
    let first = auth.start(
        &live.sub("registry-app"),
        &live.pki,
        &[(USER, PASSWORD), (ROTATED_USER, ROTATED_PASSWORD)],
    );
    let second = Auth::Basic.start(
        &live.sub("registry-tools"),
        &live.pki,
        &[(TOOLS_USER, TOOLS_PASSWORD)],
    );
    push_fixtures(&live, &first, &second);

    let fleet = Fleet::generated(&fleet_spec(&first, &second));
    let secrets = all_passwords();
    fleet
        .run("consolidate.rhai")
        .set("customer", "live")
        .set("cluster", "e2e")
        .succeeds()
        .leaks_none(&secrets);
    let consolidated = source_dockerconfigjson(&fleet);
    let auths: serde_json::Value = serde_json::from_slice(&consolidated).unwrap();
    let hosts: BTreeSet<String> = auths["auths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        hosts,
        BTreeSet::from([first.host(), second.host()]),
        "the source merges both registries"
    );
    let clients = Clients {
        live: &live,
        docker_config: docker_config(&live, "consolidated", &consolidated),
    };
    clients.pull_everything(&first, &second, "consolidated");
    if let Auth::Token = auth {
        // crane and helm pulled from the first registry with tokens issued to the source's user
        // for the repositories they asked for.
        let granted = token_requests(&first, USER, 200).join("\n");
        for scope in ["repository:e2e/app:pull", "repository:charts/app:pull"] {
            assert!(granted.contains(scope), "no token for {scope}:\n{granted}");
        }
    }

    // The control: the same pull with a wrong password is refused, so the pulls above used the
    // source's credentials rather than anonymous access.
    let refused = Clients {
        live: &live,
        docker_config: docker_config(
            &live,
            "wrong",
            &config_json(&[(&first.host(), USER, WRONG_PASSWORD)]),
        ),
    }
    .crane(&["digest", &format!("{}/e2e/app:v1", first.host())])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    // Who said 401: the registry itself (crane quotes the status), or the token server, which
    // crane quotes by its error message only, so its own log is asked.
    let said_401 = match first.token {
        None => stderr.contains("401"),
        Some(_) => !token_requests(&first, "", 401).is_empty(),
    };
    assert!(!refused.status.success() && said_401, "{stderr}");

    // validate --set online=true logs in to both registries of the source.
    let online = validate_online(&fleet, &first).output();
    for registry in [&first, &second] {
        let logged_in = format!(
            "{}: logged in ({})",
            registry.host(),
            shown_scheme(registry)
        );
        assert!(online.stdout.contains(&logged_in), "{}", online.stdout);
    }
    // A new credential the registry rejects is refused before anything is written.
    let before = fleet.snapshot();
    let refused = fleet
        .run("rotate.rhai")
        .set("customer", "live")
        .set("cluster", "e2e")
        .set("registry", &first.host())
        .set("username", ROTATED_USER)
        .set("password_file", "-")
        .set("ca_file", first.ca_cert.to_str().unwrap())
        .stdin(WRONG_PASSWORD)
        .fails(1)
        .stderr_has("the new credential does not log in")
        .stderr_has(&format!(
            "{}: credential rejected ({}, HTTP 401)",
            first.host(),
            shown_scheme(&first)
        ))
        .leaks_none(&[WRONG_PASSWORD.to_string()]);
    assert_eq!(fleet.snapshot(), before, "{}", refused.stderr);

    let rotated = rotate(&fleet, &first);
    for expected in [
        format!("live/e2e: rotated {}", first.host()),
        format!("as {ROTATED_USER} ("),
        format!("{}: logged in ({})", first.host(), shown_scheme(&first)),
    ] {
        assert!(rotated.stdout.contains(&expected), "{}", rotated.stdout);
    }
    let after = source_dockerconfigjson(&fleet);
    let auths: serde_json::Value = serde_json::from_slice(&after).unwrap();
    assert_eq!(auths["auths"][first.host()]["username"], ROTATED_USER);
    assert_eq!(auths["auths"][second.host()]["username"], TOOLS_USER);
    let clients = Clients {
        live: &live,
        docker_config: docker_config(&live, "rotated", &after),
    };
    clients.pull_everything(&first, &second, "rotated");

    // A revoked credential (here: set to a wrong password without the login check) is an error of
    // validate --set online=true, before Flux would fail to pull with it. With token auth the
    // token registry's credential is the revoked one, so the rejection comes through the Bearer flow.
    let (revoked, revoked_user, kept) = match auth {
        Auth::Basic => (&second, TOOLS_USER, &first),
        Auth::Token => (&first, ROTATED_USER, &second),
    };
    fleet
        .run("rotate.rhai")
        .set("customer", "live")
        .set("cluster", "e2e")
        .set("registry", &revoked.host())
        .set("username", revoked_user)
        .set("password_file", "-")
        .set("verify_login", "false")
        .stdin(WRONG_PASSWORD)
        .succeeds()
        .stderr_has("login check of the new");
    validate_online(&fleet, &first)
        .fails(1)
        .stdout_has(&format!(
            "{}: credential rejected ({}, HTTP 401)",
            revoked.host(),
            shown_scheme(revoked)
        ))
        .stdout_has(&format!(
            "{}: logged in ({})",
            kept.host(),
            shown_scheme(kept)
        ));
    fleet.assert_no_plaintext(&secrets);
}

/// `validate.rhai --set online=true` for the e2e cluster, trusting the harness CA.
fn validate_online(fleet: &Fleet, registry: &Registry) -> Cmd {
    fleet
        .run("validate.rhai")
        .set("customer", "live")
        .set("cluster", "e2e")
        .set("online", "true")
        .set("ca_file", registry.ca_cert.to_str().unwrap())
}

/// `rotate.rhai` moves the first registry to the rotated account, password on stdin; rotate first
/// logs in to the registry with the new credential (trusting the harness CA).
#[track_caller]
fn rotate(fleet: &Fleet, registry: &Registry) -> Output {
    fleet
        .run("rotate.rhai")
        .set("customer", "live")
        .set("cluster", "e2e")
        .set("registry", &registry.host())
        .set("username", ROTATED_USER)
        .set("password_file", "-")
        .set("ca_file", registry.ca_cert.to_str().unwrap())
        .stdin(ROTATED_PASSWORD)
        .succeeds()
        .leaks_none(&all_passwords())
}

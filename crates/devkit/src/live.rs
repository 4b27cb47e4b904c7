//! The live test tier's servers: a CNCF distribution registry (htpasswd basic auth, or token auth
//! with the in-process [`TokenServer`] of `live/token.rs`), and etcd + kube-apiserver +
//! kube-controller-manager, started on free 127.0.0.1 ports in a temp dir and stopped by pid.
//!
//! The binaries are the pinned ones `.ci/install-live-tools` builds into `.tools/bin` (found
//! through `OCITOOL_TOOLS_DIR`). Every server listens on 127.0.0.1 only, keeps its log in the temp
//! dir (printed when a test fails while it runs), and is killed and reaped when its handle is
//! dropped — never by name. There is no kubelet: pods never run, which is why tests write Pod and
//! Deployment status through the status subresource. The flags were proven by
//! `tools/live-smoke.sh`; this module must never reach outside the machine.

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod token;
pub use token::TokenServer;

/// A pinned live-tier binary, or an error saying how to install the tier.
pub fn tool(name: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("OCITOOL_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".tools/bin"));
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: the live tier needs `make e2e` (which runs .ci/install-live-tools)",
            path.display()
        );
    }
    Ok(path)
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; the tiny race until the server binds it is
/// accepted, as every port-0 harness does).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One running server: killed and reaped on drop; its log is shown if the thread is panicking.
pub struct Server {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(name: &str, command: &mut Command, log: PathBuf) -> Result<Server> {
        let file = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        Ok(Server {
            name: name.to_string(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Poll `ready` every 100 ms until it holds, the server exits, or `limit` passes.
    fn wait_ready(&mut self, limit: Duration, mut ready: impl FnMut() -> bool) -> Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if ready() {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}):\n{}", self.name, self.log_tail(30));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{} not ready after {limit:?}:\n{}",
            self.name,
            self.log_tail(30)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} log (pid {}) ---\n{}",
                self.name,
                self.pid(),
                self.log_tail(40)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a serving certificate for 127.0.0.1 and localhost, written as PEM files.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// The public half of `serving_key`, which doubles as the service-account signing key.
    pub serving_public_key: PathBuf,
}

impl Pki {
    pub fn create(dir: &Path) -> Result<Pki> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            SanType,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "ocitool-live-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key)?;
        let ca_issuer = rcgen::Issuer::new(ca, ca_key);
        // A CA-signed leaf, not a self-signed one: webpki (rustls) refuses a CA certificate used
        // as the server's own, and the registry client under test is rustls.
        let serving_key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()])?;
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving = leaf.signed_by(&serving_key, &ca_issuer)?;
        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("serving.crt"),
            serving_key: dir.join("serving.key"),
            serving_public_key: dir.join("serving.pub"),
        };
        std::fs::write(&pki.ca_cert, ca_cert.pem())?;
        std::fs::write(&pki.serving_cert, serving.pem())?;
        std::fs::write(&pki.serving_key, serving_key.serialize_pem())?;
        std::fs::write(&pki.serving_public_key, serving_key.public_key_pem())?;
        Ok(pki)
    }
}

/// A CNCF distribution registry over TLS, with htpasswd (bcrypt) basic auth or distribution
/// token auth.
pub struct Registry {
    pub server: Server,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub ca_cert: PathBuf,
    /// The token server of a registry started by [`Registry::start_with_token`]; it stops after
    /// the registry (field order is drop order).
    pub token: Option<TokenServer>,
}

impl Registry {
    /// `host:port` as a dockerconfigjson key and image references spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What runs where, for the "what was started" line of `make e2e`.
    pub fn describe(&self) -> String {
        let auth = match &self.token {
            Some(token) => format!("token auth, realm {}", token.realm()),
            None => "basic auth".to_string(),
        };
        format!(
            "registry on {} (pid {}, {auth})",
            self.host(),
            self.server.pid()
        )
    }

    pub fn start(dir: &Path, pki: &Pki, username: &str, password: &str) -> Result<Registry> {
        Self::start_with_users(dir, pki, &[(username, password)])
    }

    /// A registry with basic auth that accepts each `(username, password)` of `users` (e.g. the
    /// credential before and after a rotation); `username`/`password` are the first. `dir` is
    /// this registry's own: its htpasswd, config, storage and log live there.
    pub fn start_with_users(dir: &Path, pki: &Pki, users: &[(&str, &str)]) -> Result<Registry> {
        let mut htpasswd = String::new();
        for (user, pass) in users {
            // Cost 4, bcrypt's minimum: the registry checks it on every request.
            writeln!(
                htpasswd,
                "{user}:{}",
                bcrypt::hash(pass, 4).context("bcrypt")?
            )?;
        }
        let path = dir.join("htpasswd");
        std::fs::write(&path, htpasswd)?;
        let auth = format!(
            "  htpasswd: {{realm: ocitool-live, path: \"{}\"}}\n",
            path.display()
        );
        Self::launch(dir, pki, users, &auth, None)
    }

    /// A registry with distribution token auth: its challenge is `Bearer realm=…,service=…`, and
    /// a [`TokenServer`] started with it issues tokens to `users` (401 for anyone else). The
    /// `auth.token` options are those of distribution's configuration reference (realm,
    /// service, issuer, rootcertbundle).
    pub fn start_with_token(dir: &Path, pki: &Pki, users: &[(&str, &str)]) -> Result<Registry> {
        let token = TokenServer::start(dir, pki, users)?;
        let auth = format!(
            "  token:\n    realm: \"{}\"\n    service: \"{}\"\n    issuer: \"{}\"\n    rootcertbundle: \"{}\"\n",
            token.realm(),
            token.service,
            token.issuer,
            token.root_cert_bundle.display()
        );
        Self::launch(dir, pki, users, &auth, Some(token))
    }

    /// Write the config with `auth` (the lines under `auth:`), start the registry on a free port
    /// and wait until it listens.
    fn launch(
        dir: &Path,
        pki: &Pki,
        users: &[(&str, &str)],
        auth: &str,
        token: Option<TokenServer>,
    ) -> Result<Registry> {
        let &[(username, password), ..] = users else {
            bail!("a registry needs at least one user");
        };
        let port = free_port()?;
        let storage = dir.join("registry-data");
        std::fs::create_dir_all(&storage)?;
        let config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: \"{}\"}}\n\
             http:\n  addr: \"127.0.0.1:{port}\"\n  secret: \"ocitool-live-{port}\"\n  \
             tls: {{certificate: \"{}\", key: \"{}\"}}\nauth:\n{auth}",
            storage.display(),
            pki.serving_cert.display(),
            pki.serving_key.display(),
        );
        let config_path = dir.join("registry.yml");
        std::fs::write(&config_path, config)?;
        let mut server = Server::spawn(
            "registry",
            Command::new(tool("registry")?)
                .arg("serve")
                .arg(&config_path)
                // registry v3 exports OpenTelemetry traces to localhost:4318 unless told not to.
                .env("OTEL_TRACES_EXPORTER", "none"),
            dir.join("registry.log"),
        )?;
        server.wait_ready(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        Ok(Registry {
            server,
            port,
            username: username.to_string(),
            password: password.to_string(),
            ca_cert: pki.ca_cert.clone(),
            token,
        })
    }
}

/// etcd, kube-apiserver (token auth, RBAC) and kube-controller-manager (namespace and
/// ServiceAccount controllers), with an admin kubeconfig.
pub struct KubeApi {
    // Field order is drop order: the controller manager and the apiserver stop before etcd.
    pub controller_manager: Server,
    pub apiserver: Server,
    pub etcd: Server,
    pub port: u16,
    pub admin_kubeconfig: PathBuf,
    dir: PathBuf,
    ca_cert: PathBuf,
}

/// A static token user for `--token-auth-file`.
#[derive(Clone)]
pub struct TokenUser {
    pub token: String,
    pub name: String,
    pub groups: Vec<String>,
}

impl KubeApi {
    /// Start the three servers; `users` become static bearer tokens (an `admin` in
    /// system:masters and the controller manager's user are always added).
    pub fn start(dir: &Path, pki: &Pki, users: &[TokenUser]) -> Result<KubeApi> {
        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let mut etcd = Server::spawn(
            "etcd",
            Command::new(tool("etcd")?).args([
                "--name=live".to_string(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=live=http://127.0.0.1:{peer_port}"),
                "--initial-cluster-state=new".to_string(),
                // A throwaway store: no fsync, faster on CI disks.
                "--unsafe-no-fsync".to_string(),
                "--log-level=warn".to_string(),
            ]),
            dir.join("etcd.log"),
        )?;
        etcd.wait_ready(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", etcd_port)).is_ok()
        })?;

        let port = free_port()?;
        let mut tokens = String::new();
        let builtin = [
            ("admin", "system:masters"),
            ("system:kube-controller-manager", "system:masters"),
        ];
        for (name, group) in builtin {
            writeln!(tokens, "{},{name},{name},\"{group}\"", token_for(name))?;
        }
        for user in users {
            writeln!(
                tokens,
                "{},{},{},\"{}\"",
                user.token,
                user.name,
                user.name,
                user.groups.join(",")
            )?;
        }
        std::fs::write(dir.join("tokens.csv"), tokens)?;
        // The serving key doubles as the service-account signing key (ECDSA P-256 → ES256).
        let sa_key = &pki.serving_key;
        let mut apiserver = Server::spawn(
            "kube-apiserver",
            Command::new(tool("kube-apiserver")?).args([
                format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
                "--bind-address=127.0.0.1".to_string(),
                "--advertise-address=127.0.0.1".to_string(),
                format!("--secure-port={port}"),
                format!("--tls-cert-file={}", pki.serving_cert.display()),
                format!("--tls-private-key-file={}", pki.serving_key.display()),
                format!("--cert-dir={}", dir.join("apiserver-certs").display()),
                format!("--token-auth-file={}", dir.join("tokens.csv").display()),
                "--authorization-mode=RBAC".to_string(),
                format!("--service-account-issuer=https://127.0.0.1:{port}"),
                format!(
                    "--service-account-key-file={}",
                    pki.serving_public_key.display()
                ),
                format!("--service-account-signing-key-file={}", sa_key.display()),
                "--service-cluster-ip-range=10.0.0.0/24".to_string(),
                // Nothing to advertise: no kubernetes Service endpoints reconciler.
                "--endpoint-reconciler-type=none".to_string(),
                "--profiling=false".to_string(),
            ]),
            dir.join("kube-apiserver.log"),
        )?;
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        write_kubeconfig(&admin_kubeconfig, port, &pki.ca_cert, &token_for("admin"))?;
        let kcm_kubeconfig = dir.join("kcm.kubeconfig");
        let kcm_token = token_for("system:kube-controller-manager");
        write_kubeconfig(&kcm_kubeconfig, port, &pki.ca_cert, &kcm_token)?;
        let readyz = Kubectl {
            kubeconfig: admin_kubeconfig.clone(),
        };
        apiserver.wait_ready(Duration::from_secs(90), || {
            readyz.output_ok(&["get", "--raw", "/readyz"]) == Some("ok".to_string())
        })?;
        let kcm_port = free_port()?;
        let controller_manager = Server::spawn(
            "kube-controller-manager",
            Command::new(tool("kube-controller-manager")?).args([
                format!("--kubeconfig={}", kcm_kubeconfig.display()),
                "--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller".to_string(),
                "--leader-elect=false".to_string(),
                "--bind-address=127.0.0.1".to_string(),
                format!("--secure-port={kcm_port}"),
                format!("--cert-dir={}", dir.join("kcm-certs").display()),
                format!("--service-account-private-key-file={}", sa_key.display()),
                format!("--root-ca-file={}", pki.ca_cert.display()),
                "--profiling=false".to_string(),
            ]),
            dir.join("kube-controller-manager.log"),
        )?;
        Ok(KubeApi {
            controller_manager,
            apiserver,
            etcd,
            port,
            admin_kubeconfig,
            dir: dir.to_path_buf(),
            ca_cert: pki.ca_cert.clone(),
        })
    }

    /// A kubeconfig for a static token, with the context named `live`.
    pub fn kubeconfig_for(&self, file_name: &str, token: &str) -> Result<PathBuf> {
        let path = self.dir.join(file_name);
        write_kubeconfig(&path, self.port, &self.ca_cert, token)?;
        Ok(path)
    }

    /// The bearer token of `admin` (system:masters), e.g. for a kubeconfig of the caller's own.
    pub fn admin_token(&self) -> String {
        token_for("admin")
    }

    /// kubectl bound to the admin kubeconfig.
    pub fn admin(&self) -> Kubectl {
        Kubectl {
            kubeconfig: self.admin_kubeconfig.clone(),
        }
    }

    /// What runs where, for the "what was started" line of `make e2e`.
    pub fn describe(&self) -> String {
        format!(
            "etcd (pid {}), kube-apiserver on 127.0.0.1:{} (pid {}), kube-controller-manager (pid {})",
            self.etcd.pid(),
            self.port,
            self.apiserver.pid(),
            self.controller_manager.pid()
        )
    }
}

/// A deterministic per-run token (the temp dir is private to the test).
fn token_for(user: &str) -> String {
    format!("{}-{}", user.replace(':', "-"), std::process::id())
}

/// A kubeconfig for a static token, with the cluster, user and context all named `live`.
fn write_kubeconfig(path: &Path, port: u16, ca_cert: &Path, token: &str) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: live\n  cluster: {{server: \"https://127.0.0.1:{port}\", certificate-authority: \"{}\"}}\n\
         users:\n- name: live\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: live\n  context: {{cluster: live, user: live}}\ncurrent-context: live\n",
        ca_cert.display()
    );
    std::fs::write(path, text)?;
    Ok(())
}

/// The machine's kubectl with one kubeconfig, for test set-up and assertions.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    /// Run kubectl; stdout on success, an error with stderr otherwise.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        self.run_with_stdin(args, None)
    }

    /// Run kubectl with `stdin` (e.g. `apply -f -`).
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("kubectl")?;
        let mut pipe = child.stdin.take().context("stdin")?;
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes())?;
        }
        drop(pipe);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn output_ok(&self, args: &[&str]) -> Option<String> {
        self.run(args).ok().map(|s| s.trim().to_string())
    }

    /// `kubectl apply -f -` of a YAML text.
    pub fn apply(&self, yaml: &str) -> Result<String> {
        self.run_with_stdin(&["apply", "-f", "-"], Some(yaml))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "live tier: run by `make e2e`"]
    fn servers_start_answer_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        let registry = Registry::start(dir.path(), &pki, "ocitool", "live-pass-1").unwrap();
        let token_dir = dir.path().join("token");
        std::fs::create_dir(&token_dir).unwrap();
        let users = [("ocitool", "live-pass-1")];
        let token_registry = Registry::start_with_token(&token_dir, &pki, &users).unwrap();
        let token_port = token_registry.token.as_ref().unwrap().port;
        let api = KubeApi::start(dir.path(), &pki, &[]).unwrap();
        eprintln!(
            "{} ; {} ; {}",
            api.describe(),
            registry.describe(),
            token_registry.describe()
        );
        let admin = api.admin();
        admin.run(&["create", "namespace", "smoke"]).unwrap();
        // The serviceaccount controller of kube-controller-manager creates `default`.
        let started = Instant::now();
        while admin
            .run(&["-n", "smoke", "get", "serviceaccount", "default"])
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no default ServiceAccount"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let pids = [
            registry.server.pid(),
            token_registry.server.pid(),
            api.etcd.pid(),
            api.apiserver.pid(),
        ];
        drop(api);
        drop(registry);
        drop(token_registry);
        // The token server is threads of this process: joined on drop, its port closed.
        assert!(std::net::TcpStream::connect(("127.0.0.1", token_port)).is_err());
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} still runs"
            );
        }
    }
}

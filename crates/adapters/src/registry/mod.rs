//! Registry login verification: given a dockerconfigjson `auths` key, a
//! username and a password, find out whether the registry accepts them, the
//! way `docker login` does (OCI distribution spec "determining support",
//! `GET /v2/`, then Basic auth or the Docker/distribution token handshake).
//! This module owns endpoint normalisation, trust-root and proxy set-up, the
//! handshake and the classification of its outcome. It must never put the
//! password, an `Authorization` header value or a token into any returned
//! value, error text, `Debug`/`Display` output or log line; never send
//! credentials over plain `http://` unless the caller wrote `http://`
//! explicitly; never judge a network error by its message text; and never
//! touch the credential store itself (reading or writing dockerconfigjson is
//! the caller's job).
//!
//! # Decisions
//!
//! * **Open registries.** When `GET /v2/` answers 2xx without credentials the
//!   registry never asks for them, so nothing can be verified: such a server
//!   ignores any `Authorization` header, good or bad. The result is
//!   [`LoginStatus::NotRequired`] with [`AuthScheme::Anonymous`], never
//!   [`LoginStatus::LoggedIn`], which is reserved for a handshake in which the
//!   credential was actually exercised (Basic retry or token endpoint).
//! * **Scheme choice.** If a 401 carries both a `Bearer` and a `Basic`
//!   challenge, `Bearer` is used (it is what the distribution token spec and
//!   Docker Hub use); otherwise whichever is offered. Other schemes yield
//!   [`LoginStatus::Unsupported`].
//! * **Token request.** `GET <realm>?service=<service>&scope=<scope>…&account=<username>`
//!   with Basic auth, as in the distribution token spec; a challenge scope
//!   with several space-separated scopes becomes several `scope` parameters.
//!   The token is read from `token`, else `access_token`. A realm over plain
//!   `http://` is refused unless the registry itself was given as `http://`.
//! * **Redirects.** ureq follows up to 10 redirects for GET. With
//!   `RedirectAuthHeaders::SameHost` (set here; ureq's default, `Never`,
//!   drops it everywhere) the `Authorization` header is kept only when the
//!   redirect stays on the same host and does not go from `https` to `http`
//!   (ureq-proto `can_redirect_auth_header`); any other redirect loses it, so a
//!   cross-host redirect of the token realm ends in the token server's 401, a
//!   rejection, never a leak. `https_only` is set for `https` registries, so
//!   no request of the handshake can be redirected to plain `http`.
//! * **Timeout.** [`LoginOptions::timeout`] bounds the whole handshake (up to
//!   three requests, redirects and bodies included): each request gets ureq's
//!   global timeout set to what is left of it.
//! * **Docker Hub.** dockerconfigjson stores Docker Hub logins under
//!   `https://index.docker.io/v1/` (the legacy index address), and users write
//!   `docker.io` or `index.docker.io`; none of these serve the v2 API, which
//!   lives at `registry-1.docker.io`. All of them are mapped there, as the
//!   Docker engine does (`registry.IndexServer` / `DefaultRegistryHost`).

pub mod challenge;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ureq::config::RedirectAuthHeaders;
use ureq::http::Response;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Body, Proxy};

use challenge::Challenge;

/// The host that serves the v2 API for Docker Hub.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// Largest token-endpoint response body read.
const MAX_TOKEN_BODY: u64 = 1 << 20;

/// How to reach registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// Budget for the whole handshake (all requests, redirects and bodies).
    pub timeout: Duration,
    /// A PEM file of extra CA certificates to trust, in addition to the
    /// Mozilla roots, the OS store and `SSL_CERT_FILE`.
    pub extra_ca_file: Option<PathBuf>,
    /// Use `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` (and `NO_PROXY`) from the
    /// environment, as ureq reads them. On by default.
    pub proxy_from_env: bool,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            extra_ca_file: None,
            proxy_from_env: true,
            user_agent: concat!("ocitool-oci-login/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// How the registry was (or was not) asked to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// No credential was sent (open registry, or the handshake stopped first).
    Anonymous,
    /// `Authorization: Basic` on `/v2/`.
    Basic,
    /// A token from the challenge's realm, then `Authorization: Bearer` on `/v2/`.
    Bearer,
}

/// Why a registry could not be reached, from ureq's typed errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetErrorKind {
    /// The host name did not resolve.
    Dns,
    /// Nothing listens on the port.
    ConnectionRefused,
    /// TLS handshake or certificate failure.
    Tls,
    /// The handshake did not finish within [`LoginOptions::timeout`].
    Timeout,
    /// The proxy could not be used.
    Proxy,
    /// Anything else (reset connections, malformed HTTP, …).
    Other,
}

/// The outcome of a login check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStatus {
    /// The credential was exercised and accepted.
    LoggedIn,
    /// `/v2/` is open to anonymous clients: the credential was not checked.
    NotRequired,
    /// The registry or its token endpoint refused the credential (401/403).
    Rejected { status: u16 },
    /// No HTTP answer was had.
    Unreachable { kind: NetErrorKind, detail: String },
    /// The server answered in a way this client does not handle (not a v2
    /// registry, an auth scheme other than Basic/Bearer, an insecure realm).
    Unsupported { reason: String },
    /// The server answered, but not as the protocol says (5xx, 429, a token
    /// response without a token, a 401 without a challenge, …).
    Unexpected { status: Option<u16>, reason: String },
    /// The inputs cannot be used (bad registry key, empty username, unreadable
    /// CA file); nothing was sent.
    InvalidInput { reason: String },
}

/// What [`verify_login`] found. Holds no secret, so `Debug` is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResult {
    /// The registry key as given (`"<redacted>"` if it carried user info).
    pub registry: String,
    /// The base URL actually contacted, e.g. `https://registry-1.docker.io`;
    /// `None` if the key could not be normalised.
    pub endpoint: Option<String>,
    /// The auth scheme used.
    pub scheme: AuthScheme,
    /// The outcome.
    pub status: LoginStatus,
}

impl LoginResult {
    /// Whether the credential was checked and accepted.
    pub fn is_logged_in(&self) -> bool {
        self.status == LoginStatus::LoggedIn
    }
}

impl fmt::Display for LoginResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.endpoint.as_deref().unwrap_or(&self.registry);
        let scheme = match self.scheme {
            AuthScheme::Anonymous => "anonymous",
            AuthScheme::Basic => "basic",
            AuthScheme::Bearer => "bearer token",
        };
        match &self.status {
            LoginStatus::LoggedIn => write!(f, "{target}: logged in ({scheme})"),
            LoginStatus::NotRequired => {
                write!(f, "{target}: registry is open, credential not checked")
            }
            LoginStatus::Rejected { status } => {
                write!(f, "{target}: credential rejected ({scheme}, HTTP {status})")
            }
            LoginStatus::Unreachable { kind, detail } => {
                write!(f, "{target}: unreachable ({kind:?}): {detail}")
            }
            LoginStatus::Unsupported { reason } => write!(f, "{target}: unsupported: {reason}"),
            LoginStatus::Unexpected { status, reason } => match status {
                Some(s) => write!(f, "{target}: unexpected HTTP {s}: {reason}"),
                None => write!(f, "{target}: unexpected answer: {reason}"),
            },
            LoginStatus::InvalidInput { reason } => write!(f, "{target}: invalid input: {reason}"),
        }
    }
}

/// URL scheme of a registry endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Only when the key was written with an explicit `http://`.
    Http,
}

/// Where a registry key points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Lower-cased `host` or `host:port` (IPv6 as `[::1]:5000`).
    pub host: String,
}

impl Endpoint {
    /// `https://host[:port]`.
    pub fn base_url(&self) -> String {
        let s = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        format!("{s}://{}", self.host)
    }

    /// The API version check URL, `…/v2/`.
    pub fn v2_url(&self) -> String {
        format!("{}/v2/", self.base_url())
    }
}

/// Turns a dockerconfigjson `auths` key (`host`, `host:port`,
/// `https://host/v1/`, `docker.io`, …) into the endpoint to contact: the
/// scheme is `https` unless the key starts with `http://`; any path is
/// dropped; Docker Hub aliases map to [`DOCKER_HUB_REGISTRY`].
pub fn normalize_registry(key: &str) -> Result<Endpoint, String> {
    let key = key.trim();
    let lower = key.to_ascii_lowercase();
    let (scheme, rest) = if let Some(r) = lower.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = lower.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if lower.contains("://") {
        return Err("only http:// and https:// registry URLs are supported".into());
    } else {
        (Scheme::Https, lower.as_str())
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("registry key has no host".into());
    }
    if host.contains('@') {
        return Err("registry key must not contain user info".into());
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if !valid {
        return Err("registry host has characters a host name cannot have".into());
    }
    let host = match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB_REGISTRY
        }
        h => h,
    };
    Ok(Endpoint {
        scheme,
        host: host.to_owned(),
    })
}

/// Checks `username`/`password` against the registry named by the
/// dockerconfigjson key `registry`. Never panics, never returns secrets.
pub fn verify_login(
    registry: &str,
    username: &str,
    password: &str,
    opts: &LoginOptions,
) -> LoginResult {
    let mut result = LoginResult {
        registry: if registry.contains('@') {
            "<redacted>".to_owned()
        } else {
            registry.to_owned()
        },
        endpoint: None,
        scheme: AuthScheme::Anonymous,
        status: LoginStatus::NotRequired,
    };
    let endpoint = match normalize_registry(registry) {
        Ok(e) => e,
        Err(reason) => {
            result.status = LoginStatus::InvalidInput { reason };
            return result;
        }
    };
    result.endpoint = Some(endpoint.base_url());
    if username.is_empty() {
        result.status = LoginStatus::InvalidInput {
            reason: "empty username".into(),
        };
        return result;
    }
    if username.contains(':') {
        // RFC 7617 §2: a user-id containing a colon cannot be sent as Basic.
        result.status = LoginStatus::InvalidInput {
            reason: "username contains ':'".into(),
        };
        return result;
    }
    let agent = match build_agent(&endpoint, opts) {
        Ok(a) => a,
        Err(reason) => {
            result.status = LoginStatus::InvalidInput { reason };
            return result;
        }
    };
    let hs = Handshake {
        agent,
        endpoint,
        deadline: Instant::now() + opts.timeout,
        username,
        password,
    };
    let (scheme, status) = hs.run();
    result.scheme = scheme;
    result.status = status;
    result
}

/// The state of one verification; deliberately not `Debug`.
struct Handshake<'a> {
    agent: Agent,
    endpoint: Endpoint,
    deadline: Instant,
    username: &'a str,
    password: &'a str,
}

impl Handshake<'_> {
    fn run(&self) -> (AuthScheme, LoginStatus) {
        use AuthScheme::*;
        let v2 = self.endpoint.v2_url();
        let first = match self.get(&v2, &[], None, "registry") {
            Ok(r) => r,
            Err(s) => return (Anonymous, s),
        };
        match first.status().as_u16() {
            200..=299 => return (Anonymous, LoginStatus::NotRequired),
            401 => {}
            404 => {
                return (
                    Anonymous,
                    LoginStatus::Unsupported {
                        reason: "GET /v2/ answered 404: not an OCI/Docker v2 registry".into(),
                    },
                );
            }
            s => return (Anonymous, unexpected(s, "GET /v2/ without credentials")),
        }
        let headers = first
            .headers()
            .get_all(ureq::http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let challenges = match challenge::parse_all(headers) {
            Ok(c) if c.is_empty() => {
                return (
                    Anonymous,
                    unexpected(401, "401 without a WWW-Authenticate challenge"),
                );
            }
            Ok(c) => c,
            Err(e) => return (Anonymous, unexpected(401, &e.to_string())),
        };
        if let Some(c) = challenges.iter().find(|c| c.is("bearer")) {
            (Bearer, self.bearer(c))
        } else if challenges.iter().any(|c| c.is("basic")) {
            (Basic, self.retry_v2(&self.basic_header()))
        } else {
            let offered: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            (
                Anonymous,
                LoginStatus::Unsupported {
                    reason: format!("registry offers only {offered:?}, not Basic or Bearer"),
                },
            )
        }
    }

    fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// `GET /v2/` with a credential: 2xx logged in, 401/403 rejected.
    fn retry_v2(&self, authorization: &str) -> LoginStatus {
        match self.get(
            &self.endpoint.v2_url(),
            &[],
            Some(authorization),
            "registry",
        ) {
            Err(s) => s,
            Ok(r) => match r.status().as_u16() {
                200..=299 => LoginStatus::LoggedIn,
                s @ (401 | 403) => LoginStatus::Rejected { status: s },
                s => unexpected(s, "GET /v2/ with credentials"),
            },
        }
    }

    fn bearer(&self, c: &Challenge) -> LoginStatus {
        let Some(realm) = c.param("realm").filter(|r| !r.is_empty()) else {
            return unexpected(401, "Bearer challenge without realm");
        };
        if let Err(reason) = check_realm(realm, self.endpoint.scheme) {
            return LoginStatus::Unsupported { reason };
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = c.param("service") {
            query.push(("service", service));
        }
        for scope in c.param("scope").unwrap_or_default().split_whitespace() {
            query.push(("scope", scope));
        }
        query.push(("account", self.username));
        let mut resp = match self.get(realm, &query, Some(&self.basic_header()), "token endpoint") {
            Ok(r) => r,
            Err(s) => return s,
        };
        match resp.status().as_u16() {
            200..=299 => {}
            s @ (401 | 403) => return LoginStatus::Rejected { status: s },
            s => return unexpected(s, "token endpoint"),
        }
        let body = match resp
            .body_mut()
            .with_config()
            .limit(MAX_TOKEN_BODY)
            .read_to_string()
        {
            Ok(b) => b,
            Err(e) => return self.failure(&e, "token endpoint"),
        };
        let Some(token) = token_from_json(&body) else {
            // Never quote the body: it may hold a token.
            return unexpected(
                resp.status().as_u16(),
                "token endpoint answered without a `token` or `access_token` string",
            );
        };
        self.retry_v2(&format!("Bearer {token}"))
    }

    /// One GET within the remaining budget; transport failures become the
    /// final status.
    fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        authorization: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, LoginStatus> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(LoginStatus::Unreachable {
                kind: NetErrorKind::Timeout,
                detail: format!("{what}: time budget used up"),
            });
        }
        let mut req = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(remaining))
            .build();
        for (k, v) in query {
            req = req.query(k, v);
        }
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        req.call().map_err(|e| self.failure(&e, what))
    }

    fn failure(&self, e: &ureq::Error, what: &str) -> LoginStatus {
        match e {
            ureq::Error::RequireHttpsOnly(_) => LoginStatus::Unsupported {
                reason: format!("{what}: refused to follow a redirect to plain http"),
            },
            ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
                LoginStatus::Unexpected {
                    status: None,
                    reason: format!("{what}: {e}"),
                }
            }
            _ => LoginStatus::Unreachable {
                kind: classify(e),
                detail: scrub(&format!("{what}: {e}"), self.password),
            },
        }
    }
}

fn unexpected(status: u16, reason: &str) -> LoginStatus {
    LoginStatus::Unexpected {
        status: Some(status),
        reason: reason.to_owned(),
    }
}

/// Removes the password from text that came out of a library, in case it
/// ever echoes something it should not. Belt and braces: the password is
/// never given to anything that formats it.
fn scrub(text: &str, password: &str) -> String {
    if password.is_empty() {
        text.to_owned()
    } else {
        text.replace(password, "***")
    }
}

/// A realm must be an absolute http(s) URL, and `http` only if the registry
/// itself was reached over `http` (it receives the Basic credential).
fn check_realm(realm: &str, registry_scheme: Scheme) -> Result<(), String> {
    let lower = realm.to_ascii_lowercase();
    if lower.starts_with("https://") {
        Ok(())
    } else if lower.starts_with("http://") {
        match registry_scheme {
            Scheme::Http => Ok(()),
            Scheme::Https => Err("token realm is plain http for an https registry".into()),
        }
    } else {
        Err("token realm is not an absolute http(s) URL".into())
    }
}

/// `token`, else `access_token` (distribution token spec, "Token Response Fields").
fn token_from_json(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    ["token", "access_token"]
        .iter()
        .filter_map(|k| v.get(k)?.as_str())
        .find(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Maps ureq's error variants (and the `io::ErrorKind` / wrapped rustls
/// error inside `Error::Io`) to a [`NetErrorKind`]. No message text is read.
pub fn classify(e: &ureq::Error) -> NetErrorKind {
    use ureq::Error as E;
    match e {
        E::HostNotFound => NetErrorKind::Dns,
        E::Timeout(_) => NetErrorKind::Timeout,
        E::Tls(_) | E::Rustls(_) | E::Pem(_) | E::TlsRequired => NetErrorKind::Tls,
        E::ConnectProxyFailed(_) | E::InvalidProxyUrl => NetErrorKind::Proxy,
        E::Io(io) => {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return NetErrorKind::Tls;
            }
            match io.kind() {
                io::ErrorKind::ConnectionRefused => NetErrorKind::ConnectionRefused,
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetErrorKind::Timeout,
                _ => NetErrorKind::Other,
            }
        }
        _ => NetErrorKind::Other,
    }
}

fn build_agent(endpoint: &Endpoint, opts: &LoginOptions) -> Result<Agent, String> {
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(trust_roots(opts)?)))
        .build();
    let proxy = if opts.proxy_from_env {
        Proxy::try_from_env()
    } else {
        None
    };
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .https_only(endpoint.scheme == Scheme::Https)
        .redirect_auth_headers(RedirectAuthHeaders::SameHost)
        .timeout_global(Some(opts.timeout))
        .proxy(proxy)
        .user_agent(&opts.user_agent)
        .tls_config(tls)
        .build()
        .into())
}

/// Mozilla's roots (always present, so scratch/distroless images work) + the
/// OS store as rustls-native-certs finds it + `SSL_CERT_FILE` + the extra CA
/// file. rustls-native-certs follows OpenSSL: when `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is set, those replace the OS store, so an OS-only private CA
/// is then trusted only if it is also in one of them or in `extra_ca_file`.
fn trust_roots(opts: &LoginOptions) -> Result<Vec<Certificate<'static>>, String> {
    let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    // A missing or partly unreadable OS store is normal in minimal images.
    let native = rustls_native_certs::load_native_certs();
    roots.extend(
        native
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
    );
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        roots.extend(load_pem(Path::new(&f), "SSL_CERT_FILE")?);
    }
    if let Some(f) = &opts.extra_ca_file {
        roots.extend(load_pem(f, "extra CA file")?);
    }
    Ok(roots)
}

fn load_pem(path: &Path, what: &str) -> Result<Vec<Certificate<'static>>, String> {
    let r = rustls_native_certs::load_certs_from_paths(Some(path), None);
    if let Some(e) = r.errors.first() {
        return Err(format!("{what} {}: {e}", path.display()));
    }
    if r.certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(r.certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(key: &str) -> Endpoint {
        normalize_registry(key).unwrap_or_else(|e| panic!("{key:?}: {e}"))
    }

    #[test]
    fn docker_hub_aliases_map_to_registry_1() {
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "https://docker.io",
            "registry-1.docker.io",
            "HTTPS://Index.Docker.IO/v1/",
        ] {
            assert_eq!(
                ep(key).v2_url(),
                "https://registry-1.docker.io/v2/",
                "{key}"
            );
        }
    }

    #[test]
    fn other_keys_keep_host_and_port_and_drop_paths() {
        assert_eq!(ep("ghcr.io").base_url(), "https://ghcr.io");
        assert_eq!(
            ep("registry.example.com:5000").base_url(),
            "https://registry.example.com:5000"
        );
        assert_eq!(ep("https://quay.io/v1/").base_url(), "https://quay.io");
        assert_eq!(ep("https://host:8443/v2/").base_url(), "https://host:8443");
        assert_eq!(
            ep(" harbor.local/project ").base_url(),
            "https://harbor.local"
        );
        assert_eq!(ep("[::1]:5000").base_url(), "https://[::1]:5000");
        assert_eq!(ep("localhost:5000").scheme, Scheme::Https);
    }

    #[test]
    fn http_only_when_explicit() {
        let e = ep("http://127.0.0.1:5000/");
        assert_eq!(e.scheme, Scheme::Http);
        assert_eq!(e.v2_url(), "http://127.0.0.1:5000/v2/");
        assert_eq!(ep("127.0.0.1:5000").scheme, Scheme::Https);
    }

    #[test]
    fn invalid_keys() {
        for key in [
            "",
            "https://",
            "/v1/",
            "user:pw@host",
            "ftp://host",
            "ho st",
            "https://a\"b",
        ] {
            assert!(normalize_registry(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn userinfo_key_is_redacted_in_result() {
        let r = verify_login(
            "alice:hunter2@host",
            "alice",
            "pw",
            &LoginOptions::default(),
        );
        assert_eq!(r.registry, "<redacted>");
        assert!(matches!(r.status, LoginStatus::InvalidInput { .. }));
        assert!(!format!("{r:?}{r}").contains("hunter2"));
    }

    #[test]
    fn realm_must_not_downgrade() {
        assert!(check_realm("https://auth.docker.io/token", Scheme::Https).is_ok());
        assert!(check_realm("http://auth.example/token", Scheme::Https).is_err());
        assert!(check_realm("http://auth.example/token", Scheme::Http).is_ok());
        assert!(check_realm("/token", Scheme::Http).is_err());
    }

    #[test]
    fn token_field_precedence() {
        assert_eq!(
            token_from_json(r#"{"token":"a","access_token":"b"}"#).as_deref(),
            Some("a")
        );
        assert_eq!(
            token_from_json(r#"{"access_token":"b"}"#).as_deref(),
            Some("b")
        );
        assert_eq!(
            token_from_json(r#"{"token":"","access_token":"b"}"#).as_deref(),
            Some("b")
        );
        assert_eq!(token_from_json(r#"{"token":5}"#), None);
        assert_eq!(token_from_json("not json"), None);
    }

    #[test]
    fn classification_uses_typed_variants() {
        use ureq::Error as E;
        assert_eq!(classify(&E::HostNotFound), NetErrorKind::Dns);
        assert_eq!(
            classify(&E::Timeout(ureq::Timeout::Connect)),
            NetErrorKind::Timeout
        );
        assert_eq!(
            classify(&E::Io(io::ErrorKind::ConnectionRefused.into())),
            NetErrorKind::ConnectionRefused
        );
        assert_eq!(
            classify(&E::Io(io::ErrorKind::TimedOut.into())),
            NetErrorKind::Timeout
        );
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify(&E::Io(wrapped)), NetErrorKind::Tls);
        assert_eq!(classify(&E::Tls("x")), NetErrorKind::Tls);
        assert_eq!(
            classify(&E::ConnectProxyFailed("x".into())),
            NetErrorKind::Proxy
        );
        assert_eq!(
            classify(&E::Io(io::ErrorKind::ConnectionReset.into())),
            NetErrorKind::Other
        );
    }

    #[test]
    fn extra_ca_file_errors_are_invalid_input() {
        let opts = LoginOptions {
            extra_ca_file: Some("/nonexistent/ca.pem".into()),
            ..LoginOptions::default()
        };
        let r = verify_login("registry.example", "u", "p", &opts);
        assert!(
            matches!(r.status, LoginStatus::InvalidInput { .. }),
            "{r:?}"
        );
    }

    #[test]
    fn scrub_hides_password() {
        assert_eq!(scrub("a pw b", "pw"), "a *** b");
        assert_eq!(scrub("a b", ""), "a b");
    }
}

#[cfg(test)]
mod handshake_tests;

//! The live tier's token server: the "authorization service" of distribution's token
//! authentication, for a registry started with `auth.token`. It answers
//! `GET https://localhost:PORT/token?service=…&scope=…` by checking HTTP basic credentials
//! against the test users (401 for anything else) and returning a JWT granting the requested
//! scopes, signed ES256 by a self-signed certificate that is the registry's
//! `auth.token.rootcertbundle` and travels in the JWT's `x5c` header. It runs as threads of the
//! test process on 127.0.0.1 (HTTPS with the harness serving certificate, whose SANs are
//! `localhost` and `127.0.0.1`) and is stopped and joined when dropped; its request log (never a
//! password, an `Authorization` value or a token) is printed when a test fails while it runs.
//! It must never listen beyond 127.0.0.1 and is not a general token service: one realm path,
//! `GET` with basic auth only (what crane, helm's pull and ocitool's login check send).
//!
//! Sources: distribution v3.1.2 docs/content/spec/auth/token.md ("Requesting a Token", "Token
//! Response Fields"), jwt.md (the claim set), scope.md ("Resource Scope Grammar"), and
//! registry/auth/token/token.go (`Token.Verify`: the `x5c` chain must end in a root of the
//! bundle, `iss` must be the configured issuer, `aud` the service, `exp`/`nbf` within 60 s).

use super::Pki;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The realm's path on the token server.
const REALM_PATH: &str = "/token";
/// Seconds a token lives: the spec's minimum is 60 (token.md, `expires_in`).
const TOKEN_SECONDS: u64 = 300;
/// What an authenticated test user may do on any repository (token.md: the token carries the
/// intersection of the requested and the granted actions).
const GRANTED_ACTIONS: [&str; 2] = ["pull", "push"];
/// How long one connection may keep a handler waiting.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running token server; stopped and joined on drop.
pub struct TokenServer {
    pub port: u16,
    /// The `service` of the registry's challenge, and the tokens' audience.
    pub service: String,
    /// The tokens' `iss`, which the registry must be configured to trust.
    pub issuer: String,
    /// The PEM of the token-signing certificate: the registry's `auth.token.rootcertbundle`.
    pub root_cert_bundle: PathBuf,
    authority: Arc<Authority>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Start on a free 127.0.0.1 port; `dir` receives the signing certificate.
    pub fn start(dir: &Path, pki: &Pki, users: &[(&str, &str)]) -> Result<TokenServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let service = format!("ocitool-live-registry-{port}");
        let issuer = "ocitool-live-token-server".to_string();
        let root_cert_bundle = dir.join("token-signing.crt");
        let signer = Signer::create(&root_cert_bundle)?;
        let authority = Arc::new(Authority {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            service: service.clone(),
            issuer: issuer.clone(),
            signer,
            issued: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let tls = Arc::new(tls_config(pki)?);
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (authority, stop) = (authority.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("token-server-{port}"))
                .spawn(move || accept(&listener, &tls, &authority, &stop))?
        };
        Ok(TokenServer {
            port,
            service,
            issuer,
            root_cert_bundle,
            authority,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The realm as the registry's challenge names it: crane accepts a loopback realm only when
    /// it is spelled `localhost` (issue 12), which the serving certificate also names.
    pub fn realm(&self) -> String {
        format!("https://localhost:{}{REALM_PATH}", self.port)
    }

    /// One line per request answered: method, path, service, scopes, account, status.
    pub fn log(&self) -> Vec<String> {
        self.authority
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- token server on 127.0.0.1:{} ---\n{}",
                self.port,
                self.log().join("\n")
            );
        }
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The HTTPS side: the harness serving certificate and key.
fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(&pki.serving_cert)
        .context("serving certificate")?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&pki.serving_key).context("serving key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?)
}

/// Serve each connection on a thread of its own until `stop`; every handler is joined before
/// this returns (the scope).
fn accept(
    listener: &TcpListener,
    tls: &Arc<rustls::ServerConfig>,
    authority: &Authority,
    stop: &AtomicBool,
) {
    std::thread::scope(|scope| {
        for stream in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            scope.spawn(move || {
                if let Err(e) = serve(stream, tls.clone(), authority) {
                    authority.record(format!("connection failed: {e:#}"));
                }
            });
        }
    });
}

/// One request per connection (`Connection: close`).
fn serve(stream: TcpStream, tls: Arc<rustls::ServerConfig>, authority: &Authority) -> Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(tls)?, stream);
    let head = read_head(&mut tls)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !request.parse(&head)?.is_complete() {
        bail!("incomplete request head");
    }
    let authorization = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    let method = request.method.unwrap_or_default();
    let target = request.path.unwrap_or_default();
    let answer = authority.answer(method, target, authorization);
    let reason = match answer.status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    if answer.status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"ocitool-live-token\"\r\n");
    }
    tls.write_all(format!("{head}\r\n{}", answer.body).as_bytes())?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

/// The request line and headers, up to the blank line (a GET has no body).
fn read_head(stream: &mut impl Read) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            bail!("request head over 64 KiB");
        }
        if stream.read(&mut byte)? == 0 {
            bail!("connection closed before the request head ended");
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// A status and a JSON body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Who may have tokens, and how they are minted.
struct Authority {
    users: Vec<(String, String)>,
    service: String,
    issuer: String,
    signer: Signer,
    issued: AtomicU64,
    log: Mutex<Vec<String>>,
}

impl Authority {
    fn record(&self, line: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
        }
    }

    /// The answer to one request; logs it without anything secret.
    fn answer(&self, method: &str, target: &str, authorization: Option<&str>) -> Answer {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = Query::parse(query);
        let account = self.authenticate(authorization);
        let answer = if method != "GET" {
            error(405, "only GET with basic auth is served")
        } else if path != REALM_PATH {
            error(404, "no such realm")
        } else {
            match &account {
                None => error(401, "unknown user or wrong password"),
                Some(user) => self.grant(user, &query.scopes),
            }
        };
        self.record(format!(
            "{method} {path} service={:?} scopes={:?} account={:?} -> {}",
            query.service.unwrap_or_default(),
            query.scopes,
            account.unwrap_or_default(),
            answer.status
        ));
        answer
    }

    /// The user whose basic credentials these are, if any.
    fn authenticate(&self, authorization: Option<&str>) -> Option<String> {
        let (scheme, encoded) = authorization?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        self.users
            .iter()
            .any(|(u, p)| u == user && p == password)
            .then(|| user.to_string())
    }

    /// A token for `user` granting the requested scopes (jwt.md's claim set).
    fn grant(&self, user: &str, scopes: &[String]) -> Answer {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let jti = format!(
            "{}-{}",
            std::process::id(),
            self.issued.fetch_add(1, Ordering::SeqCst)
        );
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + TOKEN_SECONDS,
            "nbf": now,
            "iat": now,
            "jti": jti,
            "access": scopes.iter().filter_map(|s| access(s)).collect::<Vec<_>>(),
        });
        match self.signer.sign(&claims) {
            Ok(token) => Answer {
                status: 200,
                body: serde_json::json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_SECONDS,
                })
                .to_string(),
            },
            Err(e) => error(500, &format!("signing failed: {e}")),
        }
    }
}

fn error(status: u16, message: &str) -> Answer {
    Answer {
        status,
        body: serde_json::json!({ "errors": [{ "message": message }] }).to_string(),
    }
}

/// One `access` entry for a requested scope `type:name:actions`, with the actions cut down to
/// what test users are granted; `None` for a scope that does not parse. The name may hold one
/// `:` (a `host:port/…` name, scope.md), so the type ends at the first `:` and the actions start
/// after the last.
fn access(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let granted: Vec<&str> = actions
        .split(',')
        .filter(|a| GRANTED_ACTIONS.contains(a))
        .collect();
    Some(serde_json::json!({ "type": kind, "name": name, "actions": granted }))
}

/// The query parameters that matter (token.md, "Requesting a Token").
#[derive(Default)]
struct Query {
    service: Option<String>,
    scopes: Vec<String>,
}

impl Query {
    fn parse(query: &str) -> Query {
        let mut parsed = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Form encoding: `+` is a space (Go's url.Values.Encode writes scopes this way).
            let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            match key {
                "service" => parsed.service = Some(value),
                "scope" => parsed.scopes.extend(value.split(' ').map(String::from)),
                _ => {}
            }
        }
        parsed.scopes.retain(|s| !s.is_empty());
        parsed
    }
}

/// The token-signing key and its self-signed certificate (ECDSA P-256, so ES256). The registry
/// trusts the certificate as a root; `x5c` carries it, and Go's `x509.Verify` accepts a leaf
/// that is itself in the root pool.
struct Signer {
    key: EncodingKey,
    x5c: String,
}

/// jsonwebtoken's crypto backend for what the token server signs (ES256 only), on ring.
static RING_ES256: CryptoProvider = CryptoProvider {
    signer_factory: ring_es256,
    verifier_factory: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
    key_utils: KeyUtils::new_unimplemented(),
};

fn ring_es256(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::ES256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        key.as_bytes(),
        &SystemRandom::new(),
    )
    .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    Ok(Box::new(RingEs256(pair)))
}

/// ES256 is the fixed-size `r ‖ s` signature (RFC 7518 §3.4), ring's `…_FIXED_SIGNING`.
struct RingEs256(EcdsaKeyPair);

impl jsonwebtoken::signature::Signer<Vec<u8>> for RingEs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, jsonwebtoken::signature::Error> {
        self.0
            .sign(&SystemRandom::new(), message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| jsonwebtoken::signature::Error::new())
    }
}

impl JwtSigner for RingEs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

impl Signer {
    /// A new key and certificate; the certificate's PEM is written to `bundle`.
    fn create(bundle: &Path) -> Result<Signer> {
        // Once per process; a second call finds it installed, which is all it needs.
        let _ = RING_ES256.install_default();
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ocitool-live-token-signer");
        let cert = params.self_signed(&key)?;
        std::fs::write(bundle, cert.pem())?;
        Ok(Signer {
            key: EncodingKey::from_ec_der(&key.serialize_der()),
            x5c: BASE64.encode(cert.der()),
        })
    }

    fn sign(&self, claims: &serde_json::Value) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![self.x5c.clone()]);
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(dir: &Path) -> Authority {
        Authority {
            users: vec![("bot".into(), "token-test-pass".into())],
            service: "svc".into(),
            issuer: "iss".into(),
            signer: Signer::create(&dir.join("bundle.crt")).unwrap(),
            issued: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        }
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    /// The token's header and claims, as the registry's jose parser reads them.
    fn decoded(body: &str) -> (serde_json::Value, serde_json::Value) {
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        let token = answer["token"].as_str().unwrap();
        assert_eq!(answer["access_token"], token);
        let part = |i: usize| {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').nth(i).unwrap())
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&raw).unwrap()
        };
        (part(0), part(1))
    }

    #[test]
    fn grants_requested_scopes_to_a_known_user_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let authority = authority(dir.path());
        let target = "/token?service=svc&scope=repository%3A127.0.0.1%3A5000%2Fe2e%2Fapp%3Apull%2Cpush%2Cdelete+repository:charts/app:pull&account=bot";
        let ok = authority.answer("GET", target, Some(&basic("bot", "token-test-pass")));
        assert_eq!(ok.status, 200, "{}", ok.body);
        let (header, claims) = decoded(&ok.body);
        assert_eq!(header["alg"], "ES256");
        let x5c = header["x5c"][0].as_str().unwrap();
        let bundle = std::fs::read_to_string(dir.path().join("bundle.crt")).unwrap();
        let pem = CertificateDer::from_pem_slice(bundle.as_bytes()).unwrap();
        assert_eq!(BASE64.decode(x5c).unwrap(), pem.as_ref());
        assert_eq!(
            [&claims["iss"], &claims["aud"], &claims["sub"]],
            ["iss", "svc", "bot"]
        );
        assert_eq!(
            claims["access"],
            serde_json::json!([
                {"type": "repository", "name": "127.0.0.1:5000/e2e/app", "actions": ["pull", "push"]},
                {"type": "repository", "name": "charts/app", "actions": ["pull"]},
            ])
        );

        for wrong in [
            Some(basic("bot", "not-the-password")),
            Some(basic("nobody", "token-test-pass")),
            Some("Bearer something".to_string()),
            None,
        ] {
            let refused = authority.answer("GET", target, wrong.as_deref());
            assert_eq!(refused.status, 401, "{wrong:?}");
            assert!(!refused.body.contains("token\""), "{}", refused.body);
        }
        assert_eq!(
            authority
                .answer("GET", "/other", Some(&basic("bot", "token-test-pass")))
                .status,
            404
        );
        let log = authority.log.lock().unwrap().join("\n");
        assert!(
            !log.contains("token-test-pass") && !log.contains("eyJ"),
            "{log}"
        );
    }
}

//! End-to-end checks of `verify_login` against tiny HTTP/1.1 servers run in
//! threads on loopback addresses (127.0.0.1, and 127.0.0.2 for the
//! cross-host redirect). This file owns those fake registries and token
//! servers; it must never reach any address outside 127.0.0.0/8, never run a
//! server without a bound on its connections and lifetime, and never let a
//! secret it feeds in appear in a result's `Debug` or `Display` output.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{AuthScheme, LoginOptions, LoginResult, LoginStatus, NetErrorKind, verify_login};
use base64::Engine as _;

const USER: &str = "alice";
const PASSWORD: &str = "s3cr3t-PASSWORD-9f2c";
const TOKEN: &str = "tok-7c1e-do-not-leak";
const SERVICE: &str = "test-registry";

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
struct Req {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query_has(&self, key: &str, value: &str) -> bool {
        self.query
            .split('&')
            .any(|kv| kv == format!("{key}={value}"))
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn resp(status: u16) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body: String::new(),
    }
}

impl Resp {
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn body(mut self, b: &str) -> Self {
        self.body = b.into();
        self
    }
}

/// A fake server: serves at most `max_conns` connections (one request each,
/// `Connection: close`) and stops when dropped or after 10 s, whichever is first.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    fn start(
        ip: &str,
        max_conns: usize,
        handler: impl Fn(&Req, SocketAddr) -> Resp + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind loopback");
        Self::start_on(listener, max_conns, handler)
    }

    fn start_on(
        listener: TcpListener,
        max_conns: usize,
        handler: impl Fn(&Req, SocketAddr) -> Resp + Send + 'static,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut served = 0;
            while served < max_conns && Instant::now() < deadline && !stop2.load(Ordering::Relaxed)
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        if let Some(req) = read_request(&stream) {
                            let r = handler(&req, addr);
                            seen2.lock().unwrap().push(req);
                            write_response(stream, &r);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            seen,
            stop,
            handle: Some(handle),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Req> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let target = line.split_whitespace().nth(1)?.to_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Some(Req {
        path,
        query,
        headers,
    })
}

fn write_response(mut stream: TcpStream, r: &Resp) {
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&r.body);
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn opts() -> LoginOptions {
    LoginOptions {
        timeout: Duration::from_secs(5),
        proxy_from_env: false,
        ..LoginOptions::default()
    }
}

/// Every result must be free of the password, the Basic header and the token.
fn assert_no_secrets(r: &LoginResult) {
    let shown = format!("{r:?}\n{r}");
    for secret in [PASSWORD, &basic(USER, PASSWORD), TOKEN] {
        assert!(!shown.contains(secret), "secret leaked in {shown}");
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert!(!shown.contains(&b64), "basic credential leaked in {shown}");
}

fn check(r: &LoginResult, scheme: AuthScheme, status: LoginStatus) {
    assert_no_secrets(r);
    assert_eq!((r.scheme, &r.status), (scheme, &status), "{r:?}");
}

/// A registry with `Basic` auth on `/v2/`.
fn basic_registry() -> Server {
    Server::start("127.0.0.1", 4, |req, _| {
        if req.path != "/v2/" {
            return resp(404);
        }
        match req.header("authorization") {
            Some(a) if a == basic(USER, PASSWORD) => resp(200).body("{}"),
            _ => resp(401).header("WWW-Authenticate", r#"Basic realm="test registry""#),
        }
    })
}

/// A registry with token auth whose token server lives on the same host.
/// `token_field` is `token` or `access_token`.
fn bearer_registry(token_field: &'static str) -> Server {
    Server::start("127.0.0.1", 6, move |req, addr| match req.path.as_str() {
        "/v2/" => {
            if req.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
                resp(200).body("{}")
            } else {
                let ch = format!(r#"Bearer realm="http://{addr}/token",service="{SERVICE}""#);
                resp(401).header("WWW-Authenticate", &ch)
            }
        }
        "/token" => {
            let authed = req.header("authorization") == Some(&basic(USER, PASSWORD));
            if authed && req.query_has("service", SERVICE) && req.query_has("account", USER) {
                resp(200)
                    .header("Content-Type", "application/json")
                    .body(&format!(
                        r#"{{"{token_field}":"{TOKEN}","expires_in":300}}"#
                    ))
            } else {
                resp(401).body(r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#)
            }
        }
        _ => resp(404),
    })
}

#[test]
fn basic_ok() {
    let s = basic_registry();
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    check(&r, AuthScheme::Basic, LoginStatus::LoggedIn);
    assert!(r.is_logged_in());
    assert_eq!(r.endpoint.as_deref(), Some(s.url().as_str()));
    assert_eq!(s.requests().len(), 2);
}

#[test]
fn basic_rejected() {
    let s = basic_registry();
    let r = verify_login(&s.url(), USER, "wrong", &opts());
    check(&r, AuthScheme::Basic, LoginStatus::Rejected { status: 401 });
    // And the real password never reached the wire here.
    assert!(
        s.requests()
            .iter()
            .all(|q| q.header("authorization") != Some(&basic(USER, PASSWORD)))
    );
}

#[test]
fn bearer_ok() {
    let s = bearer_registry("token");
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    check(&r, AuthScheme::Bearer, LoginStatus::LoggedIn);
    let paths: Vec<String> = s.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths, ["/v2/", "/token", "/v2/"]);
}

#[test]
fn bearer_ok_with_access_token_field() {
    let s = bearer_registry("access_token");
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    check(&r, AuthScheme::Bearer, LoginStatus::LoggedIn);
}

#[test]
fn bearer_rejected() {
    let s = bearer_registry("token");
    let r = verify_login(&s.url(), USER, "wrong", &opts());
    check(
        &r,
        AuthScheme::Bearer,
        LoginStatus::Rejected { status: 401 },
    );
    assert_eq!(s.requests().len(), 2, "no retry of /v2/ without a token");
}

#[test]
fn bearer_scope_is_forwarded() {
    let s = Server::start("127.0.0.1", 4, |req, addr| {
        match req.path.as_str() {
        "/v2/" if req.header("authorization").is_some() => resp(200),
        "/v2/" => resp(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="http://{addr}/token",service="{SERVICE}",scope="repository:samalba/my-app:pull,push""#
            ),
        ),
        "/token" if req.query_has("scope", "repository%3Asamalba%2Fmy-app%3Apull%2Cpush") => {
            resp(200).body(&format!(r#"{{"token":"{TOKEN}"}}"#))
        }
        _ => resp(400),
    }
    });
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    check(&r, AuthScheme::Bearer, LoginStatus::LoggedIn);
}

#[test]
fn open_registry_is_not_a_login() {
    let s = Server::start("127.0.0.1", 1, |_, _| resp(200).body("{}"));
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    check(&r, AuthScheme::Anonymous, LoginStatus::NotRequired);
    assert!(!r.is_logged_in());
    assert!(s.requests()[0].header("authorization").is_none());
}

#[test]
fn unreachable_closed_port() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = verify_login(&format!("http://127.0.0.1:{port}"), USER, PASSWORD, &opts());
    assert_no_secrets(&r);
    assert!(
        matches!(
            r.status,
            LoginStatus::Unreachable {
                kind: NetErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn timeout_when_server_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = thread::spawn(move || {
        // Accept one connection and say nothing for 3 s.
        let conn = listener.accept();
        thread::sleep(Duration::from_secs(3));
        drop(conn);
    });
    let o = LoginOptions {
        timeout: Duration::from_secs(1),
        ..opts()
    };
    let started = Instant::now();
    let r = verify_login(&format!("http://{addr}"), USER, PASSWORD, &o);
    let took = started.elapsed();
    assert_no_secrets(&r);
    assert!(
        matches!(
            r.status,
            LoginStatus::Unreachable {
                kind: NetErrorKind::Timeout,
                ..
            }
        ),
        "{r:?}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    holder.join().unwrap();
}

#[test]
fn tls_to_a_plain_http_port_is_a_tls_error() {
    // https:// to a server that answers in clear text straight away.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let plain = thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            thread::sleep(Duration::from_millis(500));
        }
    });
    let r = verify_login(&format!("https://{addr}"), USER, PASSWORD, &opts());
    assert_no_secrets(&r);
    assert!(
        matches!(
            r.status,
            LoginStatus::Unreachable {
                kind: NetErrorKind::Tls,
                ..
            }
        ),
        "{r:?}"
    );
    plain.join().unwrap();
}

#[test]
fn server_error_is_unexpected() {
    let s = Server::start("127.0.0.1", 1, |_, _| resp(503));
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    assert_no_secrets(&r);
    assert!(
        matches!(
            r.status,
            LoginStatus::Unexpected {
                status: Some(503),
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn unknown_scheme_is_unsupported() {
    let s = Server::start("127.0.0.1", 1, |_, _| {
        resp(401).header("WWW-Authenticate", r#"Digest realm="x", nonce="abc""#)
    });
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    assert_no_secrets(&r);
    assert!(matches!(r.status, LoginStatus::Unsupported { .. }), "{r:?}");
}

#[test]
fn token_realm_redirect_to_other_host_drops_authorization() {
    // The token server on 127.0.0.2 accepts only requests carrying our Basic
    // credential; it must never see one.
    let other = Server::start("127.0.0.2", 1, |req, _| {
        if req.header("authorization").is_some() {
            resp(200).body(&format!(r#"{{"token":"{TOKEN}"}}"#))
        } else {
            resp(401)
        }
    });
    let other_token = format!("{}/token", other.url());
    let reg = Server::start("127.0.0.1", 3, move |req, addr| match req.path.as_str() {
        "/v2/" => resp(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{addr}/token",service="{SERVICE}""#),
        ),
        "/token" => resp(302).header("Location", &other_token),
        _ => resp(404),
    });
    let r = verify_login(&reg.url(), USER, PASSWORD, &opts());
    check(
        &r,
        AuthScheme::Bearer,
        LoginStatus::Rejected { status: 401 },
    );
    let seen = other.requests();
    assert_eq!(seen.len(), 1, "the redirect was followed");
    assert!(
        seen[0].header("authorization").is_none(),
        "credential crossed hosts"
    );
}

#[test]
fn token_realm_redirect_on_same_host_keeps_authorization() {
    let s = Server::start("127.0.0.1", 5, |req, addr| match req.path.as_str() {
        "/v2/" if req.header("authorization") == Some(&format!("Bearer {TOKEN}")) => resp(200),
        "/v2/" => resp(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{addr}/token",service="{SERVICE}""#),
        ),
        "/token" => resp(307).header("Location", &format!("/token2?{}", req.query)),
        "/token2" if req.header("authorization") == Some(&basic(USER, PASSWORD)) => {
            resp(200).body(&format!(r#"{{"token":"{TOKEN}"}}"#))
        }
        _ => resp(401),
    });
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    check(&r, AuthScheme::Bearer, LoginStatus::LoggedIn);
}

#[test]
fn garbage_token_response_is_unexpected_and_not_quoted() {
    let s = Server::start("127.0.0.1", 2, |req, addr| match req.path.as_str() {
        "/v2/" => resp(401).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{addr}/token""#),
        ),
        _ => resp(200).body(&format!("<html>{TOKEN}</html>")),
    });
    let r = verify_login(&s.url(), USER, PASSWORD, &opts());
    assert_no_secrets(&r);
    assert!(
        matches!(
            r.status,
            LoginStatus::Unexpected {
                status: Some(200),
                ..
            }
        ),
        "{r:?}"
    );
}

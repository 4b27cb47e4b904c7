//! The live tier (`make e2e`): ocitool against a real CNCF distribution registry and a real
//! etcd + kube-apiserver + kube-controller-manager, all started by [`ocitool_devkit::live`] on
//! free 127.0.0.1 ports in a temp dir and killed by pid when the test ends (logs printed if it
//! fails). Every test here is `#[ignore]`d, so `cargo test` skips them; `make e2e` installs the
//! pinned servers and clients (.ci/install-live-tools) and runs exactly these and devkit's
//! `live::` test.
//!
//! Each test starts its own servers: the cluster scenarios share singletons (the source
//! `flux-system/oci-creds`, the Deployment `reflector-system/reflector`), so they cannot run side by
//! side in one API server, and a server per test keeps a failure from leaking state into the next.
//! Within a test, scenarios run in order on one cluster, each repairing what it broke.
//! Every test prints what it started (`e2e: …` lines on stderr, shown with `--nocapture`).

mod cluster;
mod registry;

use ocitool_devkit::live::Pki;
use std::path::Path;

/// A private temp dir with the harness CA and serving certificate; servers keep their state and
/// logs under it.
struct LiveDir {
    dir: tempfile::TempDir,
    pki: Pki,
}

impl LiveDir {
    #[track_caller]
    fn new() -> LiveDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::create(dir.path()).expect("certificates");
        LiveDir { dir, pki }
    }

    /// A fresh subdirectory (one per server that keeps files of a fixed name, e.g. two registries).
    #[track_caller]
    fn sub(&self, name: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        path
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ca(&self) -> &str {
        self.pki.ca_cert.to_str().expect("utf-8 temp path")
    }
}

/// Say what runs where, on stderr: `make e2e` shows it (`--nocapture`).
fn started(what: &str) {
    eprintln!("e2e: started {what}");
}

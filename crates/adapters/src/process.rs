//! The one subprocess runner: every external program the product calls (sops, kubectl) runs here.
//!
//! It owns how a program is run — found through [`crate::tools`], standard input fed from its own
//! thread, standard output captured whole, standard error captured up to [`STDERR_CAP`], and a
//! timeout after which the child is killed by its pid and reaped — and how that can fail, as a
//! typed [`ProcessError`]. It never interprets a tool's output or exit code (the tool's adapter
//! classifies those once, e.g. `sops::SopsError`), and never lets a registered credential reach an
//! error: captured stderr is passed through [`ocitool_core::redact`]. Arguments do appear in
//! errors, so callers pass secrets on standard input only.
//!
//! Modelled on ripgrep's `grep-cli` process handling (`CommandReader`): every pipe is served by its
//! own thread, because a child that fills its stderr pipe while we block writing its stdin (or
//! reading its stdout) would otherwise deadlock.

use crate::tools::{self, Tool};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// Environment variable that overrides every tool's default timeout, in whole seconds.
pub const TIMEOUT_ENV: &str = "OCITOOL_TIMEOUT";

/// How much of a program's standard error is kept: its first and last halves, so both the
/// headline (sops) and the final verdict after pages of log noise (kubectl's klog lines) survive.
pub const STDERR_CAP: usize = 64 * 1024;

/// What a program that exited successfully printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// Lossily decoded, capped at [`STDERR_CAP`]; not redacted (it is not shown as-is).
    pub stderr: String,
}

/// Why a program could not be run to a successful end.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{}` was not found on PATH; {}", tool.name, tool.install_hint)]
    NotFound { tool: Tool },
    #[error("could not start `{program}`: {cause}")]
    Spawn {
        program: String,
        cause: std::io::Error,
    },
    #[error(
        "`{program}` did not finish within {} s and was stopped; if it needs longer, set \
         {TIMEOUT_ENV} to a number of seconds (e.g. {TIMEOUT_ENV}=600)",
        after.as_secs_f64()
    )]
    Timeout { program: String, after: Duration },
    /// `code` is `None` when a signal ended the program; `stderr` is trimmed and redacted.
    #[error("`{program}` failed ({}): {stderr}", exit_description(*code))]
    Failed {
        program: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("`{program}` printed non-UTF-8 output")]
    NonUtf8 { program: String },
    #[error(
        "{TIMEOUT_ENV}=`{value}` is not a whole number of seconds greater than 0; set it like \
         {TIMEOUT_ENV}=300, or unset it to use each tool's default"
    )]
    BadTimeout { value: String },
}

pub(crate) fn exit_description(code: Option<i32>) -> String {
    code.map_or("killed by a signal".to_string(), |c| {
        format!("exit code {c}")
    })
}

/// The timeout for a tool whose default is `default`: `OCITOOL_TIMEOUT` when set.
pub fn timeout_from_env(default: Duration) -> Result<Duration, ProcessError> {
    parse_timeout(std::env::var(TIMEOUT_ENV).ok().as_deref(), default)
}

fn parse_timeout(value: Option<&str>, default: Duration) -> Result<Duration, ProcessError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(ProcessError::BadTimeout {
            value: value.to_string(),
        }),
    }
}

/// One run of an external program, built up and then [`run`](Invocation::run).
#[derive(Debug)]
pub struct Invocation {
    name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Invocation {
    /// `tool`, located now, stopped after `default_timeout` unless `OCITOOL_TIMEOUT` says otherwise.
    pub fn new(tool: Tool, default_timeout: Duration) -> Result<Self, ProcessError> {
        Ok(Invocation {
            name: tool.name,
            program: tools::find(tool)?,
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: None,
            timeout: timeout_from_env(default_timeout)?,
        })
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let value = Some(value.as_ref().to_os_string());
        self.env.push((key.as_ref().to_os_string(), value));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    /// Bytes for the program's standard input; without this it reads from `/dev/null`, so a
    /// program that would prompt fails instead of waiting for a terminal.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Replace the timeout (the tool's default or `OCITOOL_TIMEOUT`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The located program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `tool arg…` as shown in errors (redacted, though secrets belong on stdin, not in arguments).
    pub fn describe(&self) -> String {
        let mut text = self.name.to_string();
        for arg in &self.args {
            text.push(' ');
            text.push_str(&arg.to_string_lossy());
        }
        ocitool_core::redact::redact(&text).into_owned()
    }

    /// Run to completion; a non-zero exit is [`ProcessError::Failed`].
    pub fn run(self) -> Result<Output, ProcessError> {
        let program = self.describe();
        let output = self.execute(&program)?;
        if output.status.success() {
            return Ok(output);
        }
        Err(ProcessError::Failed {
            program,
            code: output.status.code(),
            stderr: ocitool_core::redact::redact(output.stderr.trim()).into_owned(),
        })
    }

    /// [`run`](Invocation::run), with standard output as text.
    pub fn run_text(self) -> Result<String, ProcessError> {
        let program = self.describe();
        let output = self.run()?;
        String::from_utf8(output.stdout).map_err(|_| ProcessError::NonUtf8 { program })
    }

    fn execute(self, program: &str) -> Result<Output, ProcessError> {
        let deadline = Instant::now() + self.timeout;
        let mut child = self
            .command()
            .spawn()
            .map_err(|cause| ProcessError::Spawn {
                program: program.to_string(),
                cause,
            })?;
        if let Some(input) = self.stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // A write error means the child stopped reading; its exit status says why.
            thread::spawn(move || pipe.write_all(&input));
        }
        let stdout = read_in_thread(child.stdout.take().expect("stdout is piped"), usize::MAX);
        let stderr = read_in_thread(child.stderr.take().expect("stderr is piped"), STDERR_CAP);
        let timed_out = || ProcessError::Timeout {
            program: program.to_string(),
            after: self.timeout,
        };
        let exited = exit_notice(&child);
        if exited.recv_timeout(remaining(deadline)).is_err() {
            kill_and_reap(&mut child);
            return Err(timed_out());
        }
        let status = child.wait().map_err(|cause| ProcessError::Spawn {
            program: program.to_string(),
            cause,
        })?;
        // A grandchild that inherited the pipes can hold them open past the child's exit.
        let stdout = stdout
            .recv_timeout(remaining(deadline))
            .map_err(|_| timed_out())?;
        let stderr = stderr
            .recv_timeout(remaining(deadline))
            .map_err(|_| timed_out())?;
        Ok(Output {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Read `pipe` to its end on a thread, keeping at most `cap` bytes (see [`Capped`]).
fn read_in_thread(mut pipe: impl Read + Send + 'static, cap: usize) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Capped::new(cap);
        let mut buf = [0u8; 8192];
        // Read to the end even past the cap: a child blocked on a full pipe never exits.
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            kept.push(&buf[..n]);
        }
        let _ = tx.send(kept.into_bytes());
    });
    rx
}

/// The first and last `cap / 2` bytes of a stream, with a note of how much was left out between.
struct Capped {
    half: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    omitted: u64,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Capped {
            half: cap / 2,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        let room = self.half.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        bytes = &bytes[room..];
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(self.half);
        self.tail.drain(..excess);
        self.omitted += excess as u64;
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut out = self.head;
        if self.omitted > 0 {
            out.extend_from_slice(format!("\n[… {} bytes omitted …]\n", self.omitted).as_bytes());
        }
        out.extend(self.tail);
        out
    }
}

/// A channel that receives once `child` has exited, without reaping it.
///
/// `waitid(WEXITED | WNOWAIT)` blocks until the child exits but leaves it a zombie, so its pid
/// stays ours — never reused by another process — until [`Child::wait`] reaps it; killing by pid
/// after a timeout can therefore never hit a stranger. This beats a `try_wait` polling loop (which
/// adds its sleep to every sops call) and the `wait-timeout` crate (which installs a process-wide
/// SIGCHLD handler). See waitid(2).
fn exit_notice(child: &Child) -> Receiver<()> {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        loop {
            // SAFETY: waitid only writes into `info`, a plain C struct we own; zeroed is valid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WEXITED | libc::WNOWAIT;
            let rc = unsafe { libc::waitid(libc::P_PID, pid, &mut info, flags) };
            let interrupted =
                std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
            if rc == 0 || !interrupted {
                break;
            }
        }
        let _ = tx.send(());
    });
    rx
}

/// SIGKILL the (not yet reaped, so still ours) child and reap it, so no zombie is left behind.
fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tool = Tool {
        name: "sh",
        install_hint: "",
    };
    const CAT: Tool = Tool {
        name: "cat",
        install_hint: "",
    };

    fn sh(script: &str) -> Invocation {
        Invocation::new(SH, Duration::from_secs(30))
            .unwrap()
            .args(["-c", script])
    }

    #[test]
    fn timeout_kills_and_reaps_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // `exec` keeps the shell's pid, so the file names the `sleep` process itself.
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let started = Instant::now();
        let err = sh(&script)
            .timeout(Duration::from_secs(1))
            .run()
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&err, ProcessError::Timeout { after, .. } if *after == Duration::from_secs(1)),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("`sh -c echo") && message.contains("within 1 s"),
            "{message}"
        );
        assert!(message.contains("OCITOOL_TIMEOUT="), "{message}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // Reaped, not a zombie: a zombie still has its /proc entry.
        let proc_entry = format!("/proc/{}", pid.trim());
        assert!(
            !Path::new(&proc_entry).exists(),
            "{proc_entry} still exists"
        );
    }

    #[test]
    fn stdin_larger_than_a_pipe_buffer_round_trips() {
        // 1 MiB: far past the 64 KiB pipe buffer, so stdin and stdout must flow concurrently.
        let input: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let out = Invocation::new(CAT, Duration::from_secs(30))
            .unwrap()
            .stdin(input.clone())
            .run()
            .unwrap();
        assert!(out.stdout == input, "stdout differs from stdin");
    }

    #[test]
    fn stderr_keeps_head_and_tail_within_the_cap() {
        let script =
            "echo FIRST >&2; head -c 300000 /dev/zero | tr '\\0' x >&2; echo LAST >&2; exit 3";
        let err = sh(script).run().unwrap_err();
        let ProcessError::Failed { code, stderr, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*code, Some(3));
        assert!(
            stderr.starts_with("FIRST\n") && stderr.ends_with("LAST"),
            "{}",
            &stderr[..40]
        );
        assert!(stderr.contains("bytes omitted"));
        assert!(stderr.len() < STDERR_CAP + 100, "{}", stderr.len());
    }

    #[test]
    fn missing_program_is_not_found_with_the_install_hint() {
        let ghost = Tool {
            name: "ocitool-no-such-tool",
            install_hint: "install it with magic",
        };
        let err = Invocation::new(ghost, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { tool } if tool == ghost));
        assert!(err.to_string().contains("install it with magic"), "{err}");
    }

    #[test]
    fn failures_are_redacted_and_name_the_program() {
        ocitool_core::redact::register("pw-process-test-9Zk1");
        let err = sh("echo 'bad pw-process-test-9Zk1' >&2; exit 7")
            .run()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("`sh -c echo"), "{message}");
        assert!(
            message.contains("(exit code 7): bad <redacted>"),
            "{message}"
        );
    }

    #[test]
    fn output_is_text_or_a_non_utf8_error() {
        assert_eq!(sh("printf 'ok'").run_text().unwrap(), "ok");
        let err = sh("printf '\\377'").run_text().unwrap_err();
        assert!(matches!(err, ProcessError::NonUtf8 { .. }), "{err:?}");
    }

    #[test]
    fn timeouts_come_from_the_environment_or_the_default() {
        let default = Duration::from_secs(60);
        assert_eq!(parse_timeout(None, default).unwrap(), default);
        assert_eq!(
            parse_timeout(Some("300"), default).unwrap(),
            Duration::from_secs(300)
        );
        for bad in ["0", "-1", "1.5", "soon", ""] {
            let err = parse_timeout(Some(bad), default).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("OCITOOL_TIMEOUT=`{bad}`")),
                "{err}"
            );
        }
    }
}

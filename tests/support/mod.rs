//! Real outside checkers for the integration tests: a Python with aiosmtpd and
//! slack_sdk, an SMTP server to send mail to and read it back, Slack checks.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where the SMTP server listens.
pub const SMTP_HOST: &str = "127.0.0.1";

/// The workspace root (this crate's folder).
fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A script of tests/support/.
fn script(name: &str) -> PathBuf {
    workspace().join("tests/support").join(name)
}

/// What a command printed, for panic messages.
fn printed(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command to its end, panicking with what it printed if it cannot
/// start or exits non-zero.
fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed: {}",
        printed(&out)
    );
    out
}

/// A python3 that has tests/support/requirements.txt installed.
///
/// `AUDITWATCH_TEST_PYTHON` names one to use as it is. Otherwise a venv at
/// `target/test-python` is made on first use (`python3 -m venv`, then pip),
/// under an exclusive lock on `target/test-python.lock` so that parallel
/// test processes do not race, and made again when the requirements change.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| match std::env::var_os("AUDITWATCH_TEST_PYTHON") {
            Some(given) => {
                let given = PathBuf::from(given);
                run(
                    Command::new(&given).args(["-c", "import aiosmtpd, slack_sdk"]),
                    "AUDITWATCH_TEST_PYTHON lacks tests/support/requirements.txt",
                );
                given
            }
            None => make_venv(),
        })
        .clone()
}

fn make_venv() -> PathBuf {
    let target = workspace().join("target");
    let venv = target.join("test-python");
    let python = venv.join("bin/python");
    let marker = venv.join("requirements.installed");
    let requirements = script("requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", requirements.display()));

    fs::create_dir_all(&target)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    let lock_path = target.join("test-python.lock");
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));

    // Another process may have made it while this one waited for the lock.
    if python.exists() && fs::read_to_string(&marker).is_ok_and(|had| had == wanted) {
        return python;
    }
    if venv.exists() {
        fs::remove_dir_all(&venv)
            .unwrap_or_else(|e| panic!("cannot remove the old {}: {e}", venv.display()));
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "creating the test venv (python3 -m venv)",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "installing tests/support/requirements.txt into the test venv (pip)",
    );
    fs::write(&marker, &wanted)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
    python
}

/// How the SMTP server misbehaves; the default accepts everything.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// The first this many DATA commands (over all connections) get
    /// `451 4.3.0 Try again later`, and nothing is stored for them.
    pub fail_first: u32,
    /// A recipient whose address contains this gets `550 5.1.1 No such user`.
    pub reject: Option<String>,
    /// Require AUTH (PLAIN or LOGIN, no TLS needed) with this user and password.
    pub auth: Option<(String, String)>,
}

/// A message the SMTP server stored, as Python's email parser reads it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    /// The From header, decoded: `Name <addr>` or `addr`; "" without one.
    pub from: String,
    /// The address (addr-spec) of each mailbox in the To header.
    pub to: Vec<String>,
    /// The Subject header, decoded; "" without one.
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub date: Option<String>,
    /// The top-level content type, such as `multipart/alternative`.
    pub content_type: String,
    /// The text/plain body, decoded.
    pub text: Option<String>,
    /// The text/html body, decoded.
    pub html: Option<String>,
    /// The content type of every leaf part, in order.
    pub parts: Vec<String>,
}

/// A real SMTP server (tests/support/smtp_server.py) on 127.0.0.1, in a
/// child process stopped on drop, with its own temporary folder.
pub struct SmtpServer {
    pub port: u16,
    /// Where accepted messages are stored, as received.
    pub maildir: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    child: Child,
    dir: TempDir,
}

impl SmtpServer {
    /// Starts the server and waits (up to 20 s) until it listens.
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        let python = python();
        let dir = tempfile::tempdir().expect("temporary folder for the SMTP server");
        let port_file = dir.path().join("port");
        let maildir = dir.path().join("maildir");
        let log_path = dir.path().join("smtp.log");
        let stderr_path = dir.path().join("stderr.txt");

        let mut cmd = Command::new(&python);
        cmd.arg(script("smtp_server.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--maildir")
            .arg(&maildir)
            .arg("--log")
            .arg(&log_path)
            .arg("--fail-first")
            .arg(opts.fail_first.to_string());
        if let Some(pattern) = &opts.reject {
            cmd.arg("--reject").arg(pattern);
        }
        if let Some((user, pass)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{user}:{pass}"));
        }
        let stderr = File::create(&stderr_path).expect("SMTP server stderr file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));

        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = fs::read_to_string(&port_file) {
                break text
                    .trim()
                    .parse::<u16>()
                    .unwrap_or_else(|e| panic!("SMTP server wrote port {text:?}: {e}"));
            }
            let stderr = || fs::read_to_string(&stderr_path).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "SMTP server exited ({status}) before listening:\n{}",
                    stderr()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("SMTP server did not listen within 20 s:\n{}", stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        SmtpServer {
            port,
            maildir,
            log_path,
            stderr_path,
            child,
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("{SMTP_HOST}:{}", self.port)
    }

    /// Every stored message, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let out = run(
            Command::new(python())
                .arg(script("read_mail.py"))
                .arg(&self.maildir),
            "reading the SMTP server's Maildir",
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("read_mail.py printed bad JSON ({e}): {}", printed(&out)))
    }

    /// Waits until at least `n` messages are stored, then returns them all;
    /// panics (with the transaction log) when `timeout` passes first.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            // Counting files is cheap; parse only once there are enough.
            if self.stored() >= n {
                return self.messages();
            }
            if Instant::now() > deadline {
                panic!(
                    "SMTP server stored {} of {n} messages within {timeout:?}; its log:\n{}\n{}",
                    self.stored(),
                    self.log().join("\n"),
                    fs::read_to_string(&self.stderr_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The transaction log, a line per outcome: `451 <recipients>`,
    /// `250 <Message-ID>` (`250 -` without one), `550 <recipient>`,
    /// `535 <login>`.
    pub fn log(&self) -> Vec<String> {
        fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many message files the Maildir holds.
    fn stored(&self) -> usize {
        ["new", "cur"]
            .iter()
            .filter_map(|sub| fs::read_dir(self.maildir.join(sub)).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks Slack message payloads with slack_sdk's Block Kit models and
/// Slack's documented limits (tests/support/check_slack.py); panics with
/// every problem found.
pub fn check_slack_payloads(payloads: &[serde_json::Value]) {
    let mut file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temporary file for Slack payloads");
    serde_json::to_writer(&mut file, payloads).expect("write Slack payloads");
    file.flush().expect("write Slack payloads");
    let out = Command::new(python())
        .arg(script("check_slack.py"))
        .arg(file.path())
        .stdin(Stdio::null())
        .output()
        .expect("run check_slack.py");
    assert!(
        out.status.success(),
        "Slack payloads fail the Block Kit checks:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

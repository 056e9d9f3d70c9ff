//! The `reel` binary as a child process: one-shot CLI runs and `reel serve` on a free port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub const REEL: &str = env!("CARGO_BIN_EXE_reel");

/// Runs `reel args…` to completion under the tests' rule set (as [`ReelProcess`] and the
/// tests' config have it): (success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    run_cli_with(args, &[("REEL_CHAIN_RULES", "tapes-f237b6e")])
}

/// [`run_cli`] with `env` set instead.
pub fn run_cli_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(REEL)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run reel");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `reel serve` child process listening on a free port.
pub struct ReelProcess {
    child: Child,
    base: String,
    /// Every line the child wrote to stderr, once the reader has seen it.
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _config: tempfile::NamedTempFile,
}

impl ReelProcess {
    /// `reel serve` on `db_url` with the tests' config and a `warn` log.
    pub fn start(db_url: &str) -> ReelProcess {
        ReelProcess::start_with(db_url, &[("REEL_LOG", "warn")])
    }

    /// `reel serve` on `db_url` with the tests' config and `env` set.
    pub fn start_with(db_url: &str, env: &[(&str, &str)]) -> ReelProcess {
        let config = tempfile::NamedTempFile::new().expect("config file");
        std::fs::write(
            config.path(),
            "[server]\nworkers = 2\nkeep_alive_secs = 1\nshutdown_timeout_secs = 20\n\
             [sessions]\narbiters = 2\n[database]\nmax_connections = 8\n\
             [chain]\nrules = \"tapes-f237b6e\"\n",
        )
        .expect("write config");
        let mut child = Command::new(REEL)
            .arg("serve")
            .arg("--config")
            .arg(config.path())
            .env("REEL_LISTEN", "127.0.0.1:0")
            .env("REEL_DATABASE_URL", db_url)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start reel");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        // Keeps draining stderr so the child never blocks on a full pipe; the lines show in
        // a failing test's output and stay readable through `log`.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("reel listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                } else {
                    eprintln!("[reel] {line}");
                }
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("reel reports its address");
        ReelProcess {
            child,
            base,
            log,
            reader: Some(reader),
            _config: config,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for reel") {
                return status;
            }
            assert!(Instant::now() < deadline, "reel did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl ReelProcess {
    /// Everything the child logged; call after it exited, so the log is complete.
    pub fn log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("log reader");
        }
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for ReelProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

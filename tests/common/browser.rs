//! A real browser for the login tests: Debian's `chromedriver` on a free 127.0.0.1 port,
//! driving headless `chromium` over WebDriver with `fantoccini`. Chromedriver and the Chromium
//! processes it started are stopped by their PIDs when the `Driver` is dropped (ending a
//! WebDriver session that a failed test never closed, which chromedriver alone would leave
//! running).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};

use crate::common::{free_port, root, Proc};

/// `CHROMEDRIVER` / `CHROMIUM` override the Debian paths.
pub fn chromedriver_bin() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

pub fn chromium_bin() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

pub struct Driver {
    pub port: u16,
    proc: Proc,
    profile: PathBuf,
}

/// PIDs of every process below `pid` (from /proc), children first found first.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`: comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

impl Driver {
    /// Starts chromedriver and waits until it answers `/status` (10 s at most).
    pub fn start() -> Driver {
        let port = free_port();
        let log = std::fs::File::create(
            std::env::temp_dir().join(format!("chromedriver-{}-{port}.log", std::process::id())),
        )
        .unwrap();
        let child = Command::new(chromedriver_bin())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (scripts/setup installs it): {e}",
                    chromedriver_bin()
                )
            });
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://127.0.0.1:{port}/status"))
                .output()
                .map(|o| o.stdout == b"200")
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile =
            std::env::temp_dir().join(format!("chromium-profile-{}-{port}", std::process::id()));
        Driver {
            port,
            proc,
            profile,
        }
    }

    /// A new headless Chromium session (a fresh profile: no cookies).
    pub async fn session(&self) -> Client {
        let mut caps = Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_bin(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--window-size=1200,900",
                         format!("--user-data-dir={}", self.profile.display())]
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium (and its helpers) first: chromedriver's death would orphan them.
        for pid in descendants(self.proc.0.id()).into_iter().rev() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where the browser tests leave their screenshots: target/test-artifacts/.
pub fn artifact_dir() -> PathBuf {
    let dir = root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `script` (an async function body whose last argument is the callback) in the page.
pub async fn run_async(client: &Client, script: &str) -> Value {
    client
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}"))
}

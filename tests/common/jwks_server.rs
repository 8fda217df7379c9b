//! A JWKS server for tests, switchable at run time: serve a set, fail with a status, answer
//! garbage, or hang; it counts the requests it receives. Runs on a 127.0.0.1 port in the test
//! process and ends with it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Mode {
    Serve(String),
    Status(u16),
    Garbage,
    Hang,
}

pub struct JwksServer {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    count: Arc<AtomicUsize>,
}

fn handle(stream: TcpStream, mode: Arc<Mutex<Mode>>, count: Arc<AtomicUsize>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
        }
        count.fetch_add(1, Ordering::SeqCst);
        let m = mode.lock().unwrap().clone();
        let (status, body) = match m {
            Mode::Serve(b) => (200, b),
            Mode::Status(s) => (s, "error".to_string()),
            Mode::Garbage => (200, "<html>this is not a key set</html>".to_string()),
            Mode::Hang => {
                std::thread::sleep(Duration::from_secs(120));
                return;
            }
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

impl JwksServer {
    pub fn start(mode: Mode) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let count = Arc::new(AtomicUsize::new(0));
        let (m, c) = (mode.clone(), count.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, c) = (m.clone(), c.clone());
                std::thread::spawn(move || handle(stream, m, c));
            }
        });
        JwksServer { port, mode, count }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

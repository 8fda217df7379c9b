//! `echo-upstream`: the demo's and tests' upstream. Answers every HTTP/1.1 request with a JSON
//! echo of its method, path and headers, so a test can see exactly what passed the filter.
//! `?echo_header=name:value` adds that header to the response (`%XX` in the value stands for
//! that byte, so a test can send bytes a URL cannot carry as they are).
//! `--serve PATH=FILE` answers GET PATH with the file's current content instead (the demo's
//! JWKS endpoint).
//! Usage: echo-upstream [PORT] [--serve PATH=FILE]...   (PORT 0 or absent: a free port;
//! prints "listening on ADDR")

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::{json, Map, Value};

/// The bytes of `value`, each `%XX` read as the byte it names.
fn unescape(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let escaped = (b == b'%')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                rest = tail.get(2..).unwrap_or_default();
            }
            None => {
                out.push(b);
                rest = tail;
            }
        }
    }
    out
}

fn serve(stream: TcpStream, files: &[(String, String)]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers: Map<String, Value> = Map::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                let n = n.trim().to_ascii_lowercase();
                let v = v.trim().to_string();
                if n == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                match headers.get_mut(&n) {
                    Some(Value::String(prev)) => {
                        let joined = format!("{prev}, {v}");
                        headers.insert(n, Value::String(joined));
                    }
                    _ => {
                        headers.insert(n, Value::String(v));
                    }
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let mut extra = Vec::new();
        if let Some((_, query)) = path.split_once('?') {
            for pair in query.split('&') {
                if let Some(h) = pair.strip_prefix("echo_header=") {
                    if let Some((n, v)) = h.split_once(':') {
                        extra.extend_from_slice(format!("{n}: ").as_bytes());
                        extra.extend(unescape(v));
                        extra.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        let served = files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, f)| std::fs::read_to_string(f).unwrap_or_default());
        let echo = served.unwrap_or_else(|| {
            json!({"method": method, "path": path, "headers": headers, "body_bytes": body.len()}).to_string()
        });
        // One write per response: with Nagle's algorithm and delayed ACKs, split writes
        // stall keep-alive connections for tens of milliseconds.
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            echo.len()
        )
        .into_bytes();
        response.extend(extra);
        response.extend_from_slice(b"\r\n");
        response.extend_from_slice(echo.as_bytes());
        out.write_all(&response)?;
        out.flush()?;
    }
}

fn main() -> std::io::Result<()> {
    let mut port = "0".to_string();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--serve" {
            if let Some((p, f)) = args.next().as_deref().and_then(|s| s.split_once('=')) {
                files.push((p.to_string(), f.to_string()));
            }
        } else {
            port = a;
        }
    }
    let files = std::sync::Arc::new(files);
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming().flatten() {
        let files = files.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &files);
        });
    }
    Ok(())
}

//! Removes exports from a .wasm module, in place: `trim-exports MODULE NAME...`.
//!
//! The proxy-wasm SDK exports every callback of the ABI. Envoy skips a callback the module
//! does not export, and enters the VM for each one it does: the body, trailer and log
//! callbacks this filter has no use for cost about 1 µs per request in V8. Names not exported
//! are ignored, so running it twice is harmless.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, names)) = args.split_first() else {
        eprintln!("usage: trim-exports MODULE NAME...");
        return ExitCode::from(2);
    };
    let result = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|module| trim(&module, names))
        .and_then(|(trimmed, dropped)| {
            // A new file renamed over the old one: the build's hard link to it stays as it was.
            let tmp = format!("{path}.trim");
            std::fs::write(&tmp, trimmed)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map(|()| dropped)
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(dropped) => {
            println!("{path}: {dropped} exports removed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("trim-exports: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

const EXPORT_SECTION: u8 = 7;

/// The module without the exports in `drop`, and how many it removed.
fn trim(module: &[u8], drop: &[String]) -> Result<(Vec<u8>, usize), String> {
    let (header, mut rest) = module
        .split_at_checked(8)
        .ok_or("not a wasm module (too short)")?;
    if header != b"\0asm\x01\0\0\0" {
        return Err("not a wasm module (bad magic or version)".into());
    }
    let mut out = header.to_vec();
    let mut dropped = 0;
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, after_size) = leb(after_id)?;
        let (body, next) = after_size
            .split_at_checked(size)
            .ok_or("section runs past the end")?;
        rest = next;
        if id == EXPORT_SECTION {
            let (kept, n) = trim_exports(body, drop)?;
            dropped += n;
            out.push(id);
            put_leb(&mut out, kept.len());
            out.extend(kept);
        } else {
            out.push(id);
            put_leb(&mut out, size);
            out.extend(body);
        }
    }
    Ok((out, dropped))
}

fn trim_exports(body: &[u8], drop: &[String]) -> Result<(Vec<u8>, usize), String> {
    let (count, mut rest) = leb(body)?;
    let mut kept: Vec<u8> = Vec::new();
    let mut n_kept = 0;
    for _ in 0..count {
        let start = rest;
        let (len, after_len) = leb(rest)?;
        let (name, after_name) = after_len
            .split_at_checked(len)
            .ok_or("export name runs past the end")?;
        let (_kind, after_kind) = after_name.split_first().ok_or("export kind missing")?;
        let (_index, after_index) = leb(after_kind)?;
        let entry = start
            .get(..start.len() - after_index.len())
            .ok_or("export entry")?;
        rest = after_index;
        if !drop.iter().any(|d| d.as_bytes() == name) {
            kept.extend(entry);
            n_kept += 1;
        }
    }
    if !rest.is_empty() {
        return Err("export section has trailing bytes".into());
    }
    let mut out = Vec::new();
    put_leb(&mut out, n_kept);
    out.extend(kept);
    Ok((out, count - n_kept))
}

/// An unsigned LEB128 number (at most 32 bits, as the format's sizes and counts are).
fn leb(bytes: &[u8]) -> Result<(usize, &[u8]), String> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = usize::try_from(value).map_err(|_| "number too large")?;
            return Ok((v, bytes.get(i + 1..).unwrap_or_default()));
        }
    }
    Err("bad LEB128 number".into())
}

fn put_leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A module with a type section, the given function exports and a custom section after
    /// them.
    fn module(exports: &[(&str, usize)]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend([1, 4, 1, 0x60, 0, 0]);
        let mut body = Vec::new();
        put_leb(&mut body, exports.len());
        for (name, index) in exports {
            put_leb(&mut body, name.len());
            body.extend(name.as_bytes());
            body.push(0);
            put_leb(&mut body, *index);
        }
        m.push(EXPORT_SECTION);
        put_leb(&mut m, body.len());
        m.extend(body);
        m.extend([0, 3, 1, b'x', 9]);
        m
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn drops_only_the_named_exports() {
        let m = module(&[
            ("proxy_on_log", 200),
            ("keep", 201),
            ("proxy_on_response_body", 7),
        ]);
        let drop = names(&["proxy_on_log", "proxy_on_response_body", "absent"]);
        let (out, n) = trim(&m, &drop).unwrap();
        assert_eq!(n, 2);
        // Indices and the other sections are untouched.
        assert_eq!(out, module(&[("keep", 201)]));
        let (again, n) = trim(&out, &drop).unwrap();
        assert_eq!((again, n), (out, 0), "idempotent");
    }

    #[test]
    fn long_sections_round_trip() {
        let many: Vec<String> = (0..300).map(|i| format!("export_{i}")).collect();
        let exports: Vec<(&str, usize)> = many.iter().map(|s| (s.as_str(), 70_000)).collect();
        let m = module(&exports);
        let (out, n) = trim(&m, &[]).unwrap();
        assert_eq!((out, n), (m.clone(), 0));
        let (out, n) = trim(&m, &names(&["export_7"])).unwrap();
        assert_eq!(n, 1);
        let kept: Vec<(&str, usize)> = exports
            .iter()
            .copied()
            .filter(|(e, _)| *e != "export_7")
            .collect();
        assert_eq!(out, module(&kept));
    }

    #[test]
    fn malformed_modules_are_refused() {
        let m = module(&[("a", 1), ("b", 2)]);
        assert!(trim(b"\0asm", &[]).is_err());
        assert!(trim(b"\0asm\x02\0\0\0", &[]).is_err());
        let section_ends = [8, 14, m.len() - 5, m.len()];
        for cut in (9..m.len()).filter(|c| !section_ends.contains(c)) {
            assert!(trim(&m[..cut], &names(&["a"])).is_err(), "cut at {cut}");
        }
        assert!(leb(&[0x80, 0x80, 0x80, 0x80, 0x80, 0]).is_err());
    }
}

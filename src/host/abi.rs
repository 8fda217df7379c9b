//! The two host calls the SDK cannot make the way the filter needs: a local reply with
//! response code details (the SDK's `send_http_response` passes none), and setting a
//! property (filter state). Both are imported here directly and return the host's status
//! as a number: the SDK's wrappers panic on a status they do not expect, and a panic kills
//! the VM.

use std::ptr::null;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;

    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// The host's status for success.
const OK: u32 = 0;

/// Pairs in the proxy-wasm map serialization: count, then each name and value size, then
/// each name and value followed by a NUL.
fn serialize(pairs: &[(&str, &str)]) -> Option<Vec<u8>> {
    let size = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
    let mut out = Vec::with_capacity(
        4 + pairs
            .iter()
            .map(|(n, v)| n.len() + v.len() + 10)
            .sum::<usize>(),
    );
    out.extend_from_slice(&size(pairs.len())?);
    for (n, v) in pairs {
        out.extend_from_slice(&size(n.len())?);
        out.extend_from_slice(&size(v.len())?);
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    Some(out)
}

/// Sends a local reply with `details` as its response code details; `Err(status)` when
/// the host refuses it.
pub fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(), u32> {
    let headers = serialize(headers).ok_or(u32::MAX)?;
    // SAFETY: every pointer and length pair comes from a live slice that outlives the call;
    // the host only reads them.
    let status = unsafe {
        super::trace::host(|| {
            proxy_send_local_response(
                status,
                details.as_ptr(),
                details.len(),
                body.as_ptr(),
                body.len(),
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    };
    match status {
        OK => Ok(()),
        other => Err(other),
    }
}

/// Sets the property `name` (one path segment) to `value`: in Envoy, the filter state
/// object `wasm.<name>` of the current stream.
pub fn set_property(name: &str, value: &str) -> Result<(), u32> {
    let value_ptr = if value.is_empty() {
        null()
    } else {
        value.as_ptr()
    };
    // SAFETY: as above, live slices only read by the host.
    let status = unsafe {
        super::trace::host(|| proxy_set_property(name.as_ptr(), name.len(), value_ptr, value.len()))
    };
    match status {
        OK => Ok(()),
        other => Err(other),
    }
}

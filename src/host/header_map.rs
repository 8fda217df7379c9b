//! Reads a header map from the host as one buffer. The SDK's reader copies every name and
//! value into strings of their own; on a cached request those copies (and the allocator calls
//! behind them) were a large share of the time spent in the sandbox.

use std::ptr::null_mut;

use proxy_wasm::types::MapType;

use crate::request::header_map::HeaderMap;

// The SDK imports the same function with its own enum types; the ABI is the same u32s.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

pub fn read(map: MapType) -> Result<HeaderMap, String> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer it got from this module's `proxy_on_memory_allocate`
    // (a boxed slice of exactly `size` bytes, so capacity == length) and its size.
    let buf = unsafe {
        match super::trace::host(|| proxy_get_header_map_pairs(map as u32, &mut data, &mut size)) {
            0 if data.is_null() => Vec::new(),
            0 => {
                super::trace::vm_entry();
                Vec::from_raw_parts(data, size, size)
            }
            status => return Err(format!("host status {status}")),
        }
    };
    super::trace::work(|| HeaderMap::from_serialized(buf))
        .map_err(|_| "malformed header map".to_string())
}

/// One header's value (the first, when there are several), or `None` when it is absent or
/// the host cannot say. Text that is not UTF-8 is read lossily, as in [`read`]: the SDK's own
/// reader unwraps it, and a header from the upstream or the IdP must never trap the VM.
pub fn read_value(map: MapType, name: &str) -> Option<String> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the key is a live slice only read by the host; the value pointer comes from
    // this module's `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes).
    let bytes = unsafe {
        match super::trace::host(|| {
            proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
        }) {
            0 if !data.is_null() => {
                super::trace::vm_entry();
                Vec::from_raw_parts(data, size, size)
            }
            // Present and empty, absent, or a status this filter has no use for.
            0 => Vec::new(),
            _ => return None,
        }
    };
    Some(
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

//! A header map read from the host: parsed once from the proxy-wasm serialization, then
//! looked up by name without copies.

/// Headers as Envoy gives them: lowercase names, pseudo-headers included, repeated names kept
/// in order. Values that are not UTF-8 arrive converted lossily, which can only make them fail
/// to match.
///
/// Names and values live in one string, located by byte spans: the host's serialized map is
/// taken over as it is, so a request costs one UTF-8 check and no copy per header.
#[derive(Debug, Clone, Default)]
pub struct HeaderMap {
    text: String,
    /// (name start, name end, value start, value end) in `text`.
    spans: Vec<[usize; 4]>,
}

/// Why a serialized header map could not be read (a host bug, never the client's doing).
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedMap;

impl HeaderMap {
    pub fn new(headers: Vec<(String, String)>) -> Self {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(headers.len());
        for (n, v) in headers {
            let ns = text.len();
            text.push_str(&n);
            let vs = text.len();
            text.push_str(&v);
            spans.push([ns, vs, vs, text.len()]);
        }
        Self { text, spans }
    }

    /// Takes over a header map in the proxy-wasm serialization: a little-endian u32 count,
    /// then a (name length, value length) u32 pair per header, then each name and value
    /// followed by a NUL byte.
    pub fn from_serialized(mut buf: Vec<u8>) -> Result<Self, MalformedMap> {
        let word = |b: &[u8], at: usize| -> Result<usize, MalformedMap> {
            let bytes: [u8; 4] = b
                .get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .ok_or(MalformedMap)?;
            usize::try_from(u32::from_le_bytes(bytes)).map_err(|_| MalformedMap)
        };
        if buf.is_empty() {
            return Ok(Self::default());
        }
        let count = word(&buf, 0)?;
        let sizes_end = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(4))
            .filter(|&n| n <= buf.len())
            .ok_or(MalformedMap)?;
        let mut spans = Vec::with_capacity(count);
        let mut at = sizes_end;
        for i in 0..count {
            let name_len = word(&buf, 4 + 8 * i)?;
            let value_len = word(&buf, 8 + 8 * i)?;
            let name_end = at.checked_add(name_len).ok_or(MalformedMap)?;
            let value_start = name_end.checked_add(1).ok_or(MalformedMap)?;
            let value_end = value_start.checked_add(value_len).ok_or(MalformedMap)?;
            // Each name and value ends at a NUL, as the host writes them: a length that
            // lands elsewhere (inside a character, say) is a malformed map, never a header
            // that reads differently than it lists.
            if buf.get(name_end) != Some(&0) || buf.get(value_end) != Some(&0) {
                return Err(MalformedMap);
            }
            spans.push([at, name_end, value_start, value_end]);
            at = value_end + 1;
        }
        // The binary prefix becomes NULs so that the whole buffer can be checked as UTF-8 in
        // one pass, without moving the names and values.
        if let Some(prefix) = buf.get_mut(..sizes_end) {
            prefix.fill(0);
        }
        match String::from_utf8(buf) {
            Ok(text) => Ok(Self { text, spans }),
            Err(e) => {
                let buf = e.into_bytes();
                let part = |s: usize, e: usize| {
                    String::from_utf8_lossy(buf.get(s..e).unwrap_or_default()).into_owned()
                };
                Ok(Self::new(
                    spans
                        .iter()
                        .map(|&[ns, ne, vs, ve]| (part(ns, ne), part(vs, ve)))
                        .collect(),
                ))
            }
        }
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|s| (self.name(s), self.value(s)))
    }

    /// The first value of `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .find(|s| self.is_named(s, name))
            .map(|s| self.value(s))
    }

    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.spans
            .iter()
            .filter(move |s| self.is_named(s, name))
            .map(|s| self.value(s))
    }

    /// Lengths first: most names are ruled out without looking at their bytes.
    fn is_named(&self, span: &[usize; 4], name: &str) -> bool {
        let [ns, ne, _, _] = *span;
        ne.wrapping_sub(ns) == name.len() && self.name(span) == name
    }

    fn name(&self, &[ns, ne, _, _]: &[usize; 4]) -> &str {
        self.text.get(ns..ne).unwrap_or_default()
    }

    fn value(&self, &[_, _, vs, ve]: &[usize; 4]) -> &str {
        self.text.get(vs..ve).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            b.extend((n.len() as u32).to_le_bytes());
            b.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            b.extend(*n);
            b.push(0);
            b.extend(*v);
            b.push(0);
        }
        b
    }

    #[test]
    fn serialized_maps() {
        let b = serialize(&[
            (b":path", b"/a"),
            (b"x", b""),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
        ]);
        let r = HeaderMap::from_serialized(b.clone()).unwrap();
        assert_eq!(r.header(":path"), Some("/a"));
        assert_eq!(r.header("x"), Some(""));
        assert_eq!(
            r.header_values("cookie").collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(r.header("y"), None);
        assert_eq!(r.headers().count(), 4);
        // Every truncation and a count that overstates the pairs are refused, never a panic.
        for cut in 1..b.len() {
            assert_eq!(
                HeaderMap::from_serialized(b.get(..cut).unwrap().to_vec()).err(),
                Some(MalformedMap),
                "cut at {cut}"
            );
        }
        let mut big = b.clone();
        big[0] = 200;
        assert!(HeaderMap::from_serialized(big).is_err());
        // Lengths that do not land on the NUL separators (found by the fuzz target: a name cut
        // inside a character listed a header that no lookup could find).
        let mut shifted = b.clone();
        shifted[4] += 1;
        assert_eq!(
            HeaderMap::from_serialized(shifted).err(),
            Some(MalformedMap)
        );
        let mut cut = serialize(&[("é".as_bytes(), b"v")]);
        cut[4] = 1;
        cut[8] = 2;
        assert_eq!(HeaderMap::from_serialized(cut).err(), Some(MalformedMap));
        assert_eq!(
            HeaderMap::from_serialized(Vec::new())
                .unwrap()
                .headers()
                .count(),
            0
        );
        assert_eq!(
            HeaderMap::from_serialized(0u32.to_le_bytes().to_vec())
                .unwrap()
                .headers()
                .count(),
            0
        );
    }

    #[test]
    fn non_utf8_values_are_converted_lossily() {
        let b = serialize(&[(b"a", b"ok"), (b"b", b"\xff\xfe"), (b"c", b"\xc3\xa9")]);
        let r = HeaderMap::from_serialized(b).unwrap();
        assert_eq!(r.header("a"), Some("ok"));
        assert_eq!(r.header("b"), Some("\u{fffd}\u{fffd}"));
        assert_eq!(r.header("c"), Some("é"));
        let r = HeaderMap::from_serialized(serialize(&[(b"c", "é".as_bytes())])).unwrap();
        assert_eq!(r.header("c"), Some("é"));
    }
}

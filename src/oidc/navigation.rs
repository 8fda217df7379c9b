//! Browser navigation or not: a navigation that needs a login gets a 302 to the IdP, every
//! other request `401 Login required` (a `fetch` that follows a 302 to another origin only
//! sees a CORS error).

use crate::request::view::Request;

/// GET or HEAD, no `X-Requested-With`, and `Sec-Fetch-Mode: navigate` or, from a client that
/// sends no `Sec-Fetch-Mode`, an `Accept` that names `text/html`. When `Sec-Fetch-Mode` is
/// sent it decides alone: a `fetch` asking for HTML (htmx does) is `cors`, not a navigation.
pub fn is_navigation(req: &Request) -> bool {
    let method = req.method();
    if !(method == "GET" || method == "HEAD") || req.header("x-requested-with").is_some() {
        return false;
    }
    match req.header("sec-fetch-mode") {
        Some(mode) => mode.trim().eq_ignore_ascii_case("navigate"),
        None => req.header_values("accept").any(|a| {
            a.split(',').any(|media| {
                let media = media.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("text/html")
            })
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const BROWSER_ACCEPT: &str =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut all = vec![(":method".to_string(), method.to_string())];
        all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        Request::new(all)
    }

    #[test]
    fn navigation_table() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool, &'a str);
        let cases: &[Case] = &[
            (
                "GET",
                &[("sec-fetch-mode", "navigate"), ("accept", BROWSER_ACCEPT)],
                true,
                "browser",
            ),
            (
                "HEAD",
                &[("sec-fetch-mode", "navigate")],
                true,
                "HEAD navigation",
            ),
            (
                "GET",
                &[("sec-fetch-mode", "Navigate")],
                true,
                "case-insensitive mode",
            ),
            (
                "GET",
                &[("accept", BROWSER_ACCEPT)],
                true,
                "old browser, no Sec-Fetch",
            ),
            (
                "GET",
                &[("accept", "TEXT/HTML; q=1")],
                true,
                "case and parameters",
            ),
            ("GET", &[("accept", "*/*")], false, "curl"),
            ("GET", &[], false, "no headers"),
            (
                "GET",
                &[("accept", "application/json")],
                false,
                "API client",
            ),
            ("GET", &[("accept", "text/htmlx")], false, "not text/html"),
            (
                "GET",
                &[("sec-fetch-mode", "cors"), ("accept", "*/*")],
                false,
                "fetch()",
            ),
            (
                "GET",
                &[("sec-fetch-mode", "cors"), ("accept", "text/html")],
                false,
                "htmx",
            ),
            (
                "GET",
                &[("sec-fetch-mode", "no-cors"), ("accept", "text/html")],
                false,
                "img",
            ),
            (
                "GET",
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("x-requested-with", "XMLHttpRequest"),
                ],
                false,
                "jQuery",
            ),
            (
                "GET",
                &[("accept", "text/html"), ("x-requested-with", "x")],
                false,
                "XHR",
            ),
            (
                "POST",
                &[("sec-fetch-mode", "navigate"), ("accept", BROWSER_ACCEPT)],
                false,
                "form post",
            ),
            ("OPTIONS", &[("accept", "text/html")], false, "preflight"),
            (
                "get",
                &[("sec-fetch-mode", "navigate")],
                false,
                "methods are case-sensitive",
            ),
        ];
        for (method, headers, want, what) in cases {
            assert_eq!(is_navigation(&req(method, headers)), *want, "{what}");
        }
    }
}

//! Browser navigation or not: a navigation that needs a login gets a 302 to the IdP, every
//! other request `401 Login required` (a `fetch` that follows a 302 to another origin only
//! sees a CORS error).

use crate::request::view::Request;

/// GET or HEAD, no `X-Requested-With`, and `Sec-Fetch-Mode: navigate` or an `Accept` that
/// names `text/html`, as the contract says: a `fetch` asking for HTML (htmx) counts as a
/// navigation unless it sends `X-Requested-With`.
pub fn is_navigation(req: &Request) -> bool {
    let method = req.method();
    if !(method == "GET" || method == "HEAD") || req.header("x-requested-with").is_some() {
        return false;
    }
    let navigate = req
        .header("sec-fetch-mode")
        .is_some_and(|mode| mode.trim().eq_ignore_ascii_case("navigate"));
    navigate
        || req.header_values("accept").any(|a| {
            a.split(',').any(|media| {
                let media = media.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("text/html")
            })
        })
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
                true,
                "fetch asking for HTML: the contract's Accept rule",
            ),
            (
                "GET",
                &[("sec-fetch-mode", "no-cors"), ("accept", "text/html")],
                true,
                "no-cors asking for HTML: the same rule",
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

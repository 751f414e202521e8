//! The page at `/`: its files are embedded in the binary (no CDN, nothing fetched at run time,
//! no node at build time), served with an `ETag` (a matching `If-None-Match` gets 304) and a
//! Content-Security-Policy that allows scripts, styles and connections only from the daemon
//! itself — no inline script, no eval. The page holds no data: it asks the API for everything,
//! with the token when the daemon has one, so it needs none itself.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// Scripts, styles, images and connections from this origin only; no plugins, no framing, no
/// `<base>`, no form posts elsewhere. `img-src data: blob:` for the PNG exports.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    kind: &'static str,
    body: &'static [u8],
}

/// Every file the page loads; `index.html` is served at `/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        kind: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        name: "app.js",
        kind: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "app.css",
        kind: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        kind: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        kind: "text/css; charset=utf-8",
        body: include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// The entity tag of a file: its CRC-32 and length, which change with every build that
/// changes it.
fn etag(body: &[u8]) -> String {
    format!("\"{:08x}-{:x}\"", crc32fast::hash(body), body.len())
}

fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let tag = etag(asset.body);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let common = [
        (header::ETAG, HeaderValue::from_str(&tag).ok()),
        // Revalidated every time: a new binary serves new files at once.
        (
            header::CACHE_CONTROL,
            Some(HeaderValue::from_static("no-cache")),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            Some(HeaderValue::from_static(CSP)),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            Some(HeaderValue::from_static("nosniff")),
        ),
        (
            header::REFERRER_POLICY,
            Some(HeaderValue::from_static("no-referrer")),
        ),
    ];
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(asset.kind))],
            asset.body,
        )
            .into_response()
    };
    for (name, value) in common {
        if let Some(v) = value {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

/// `GET /assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().skip(1).find(|a| a.name == name) {
        Some(a) => serve(a, &headers),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no asset {name:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_page_weighs_at_most_150_kb_gzipped() {
        let mut total = 0;
        for a in ASSETS {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(a.body).unwrap_or_else(|e| panic!("{e}"));
            let n = gz.finish().unwrap_or_else(|e| panic!("{e}")).len();
            println!("{:<20} {:>7} bytes, {:>6} gzipped", a.name, a.body.len(), n);
            total += n;
        }
        println!("total {total} bytes gzipped");
        assert!(total <= 150 * 1024, "{total} bytes gzipped");
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap_or_default();
        for tag in html.split('<').skip(1) {
            if tag.starts_with("script") {
                assert!(tag.contains(" src=\"assets/"), "inline script: <{tag}");
            }
            assert!(!tag.starts_with("style"), "inline style: <{tag}");
            let attributes = tag.split('>').next().unwrap_or_default();
            for a in attributes.split_whitespace().skip(1) {
                let inline = a.starts_with("style=") || (a.starts_with("on") && a.contains('='));
                assert!(!inline, "inline attribute {a} in <{attributes}>");
            }
        }
        let js = std::str::from_utf8(ASSETS[1].body).unwrap_or_default();
        for risky in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(risky), "app.js uses {risky}");
        }
    }

    #[test]
    fn vendored_files_match_their_checksums() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/vendor/uplot");
        let notes = std::fs::read_to_string(format!("{dir}/VENDORED.md")).unwrap_or_default();
        let sums: String = notes
            .lines()
            .filter(|l| l.len() > 66 && l.as_bytes()[64] == b' ')
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(sums.lines().count(), 3, "three checksums in VENDORED.md");
        let mut check = std::process::Command::new("sha256sum")
            .args(["--check", "--strict", "-"])
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("sha256sum: {e}"));
        if let Some(mut stdin) = check.stdin.take() {
            stdin
                .write_all(sums.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let status = check.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "a vendored file differs from VENDORED.md");
    }
}

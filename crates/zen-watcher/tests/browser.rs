//! The page in a real browser: Debian's Chromium driven by `playwright-core` under `node
//! --test` (`tests/browser/`), against two real daemons under load — one open, one with a
//! token. Screenshots (desktop and phone), downloads and the report's PDF are written to
//! `target/browser/` on every run.
//!
//! Needs `chromium`, `node`, `pdftoppm` and the suite's npm packages (`npm ci` in
//! `tests/browser`); `.ci/run` installs them. Skips loudly without them, fails with
//! `ZEN_REQUIRE_EXTERNAL=1`.

#![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

use std::path::Path;
use std::process::Command;

mod common;
use common::{external, start};

#[test]
fn the_page_works_in_a_real_browser() {
    let (Some(chromium), Some(node), Some(_)) =
        (external("chromium"), external("node"), external("pdftoppm"))
    else {
        return;
    };
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    if !suite.join("node_modules/playwright-core").is_dir() {
        assert!(
            std::env::var("ZEN_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "playwright-core is required (ZEN_REQUIRE_EXTERNAL=1): run `npm ci` in tests/browser"
        );
        eprintln!(
            "\n*** SKIPPED: tests/browser has no node_modules (npm ci); this test proves nothing here ***\n"
        );
        return;
    }
    let open_dir = tempfile::tempdir().unwrap();
    let token_dir = tempfile::tempdir().unwrap();
    let fast = [("ZEN_ALERTING_INTERVAL", "1s")];
    let (mut open, addr, logs) = start(open_dir.path(), &fast);
    std::thread::spawn(move || logs.for_each(drop));
    // The guarded daemon starts with two hours of a filesystem filling: its forecast shows.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    common::filling_history(token_dir.path(), now, 7_200);
    let token = "browser-suite-token";
    let (mut guarded, token_addr, logs) = start(token_dir.path(), &[("ZEN_TOKEN", token)]);
    std::thread::spawn(move || logs.for_each(drop));
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../browser");
    let out = Command::new(node)
        .args(["--test", "--test-reporter=spec"])
        .arg("page.test.mjs")
        .current_dir(&suite)
        .env("ZEN_URL", format!("http://{addr}"))
        .env("ZEN_TOKEN_URL", format!("http://{token_addr}"))
        .env("ZEN_TOKEN", token)
        .env("ZEN_CHROMIUM", chromium)
        .env("ZEN_SHOTS", &shots)
        .output()
        .unwrap();
    let _ = open.kill();
    let _ = guarded.kill();
    let _ = (open.wait(), guarded.wait());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}\nscreenshots in {}", shots.display());
    assert!(
        out.status.success(),
        "the browser suite failed:\n{stdout}\n{stderr}"
    );
}

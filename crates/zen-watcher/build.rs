//! Sets `ZEN_COMMIT`, the commit the binary is built from, for `--version`: `git rev-parse`
//! in a checkout, `ZEN_COMMIT` from the environment where there is no checkout (a source
//! archive, an image build without `.git`), else `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-env-changed=ZEN_COMMIT");
    let git = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    // Built again when the checkout moves to another commit (only files that exist are
    // named: cargo runs the script every time for one that does not).
    let mut watched = vec![git.join("HEAD"), git.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(reference) = head.strip_prefix("ref: ")
    {
        watched.push(git.join(reference.trim()));
    }
    for file in watched.iter().filter(|f| f.is_file()) {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    let commit = std::env::var("ZEN_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    });
    println!(
        "cargo::rustc-env=ZEN_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}

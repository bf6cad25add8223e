//! buf 1.75, the oracle of the differential tests: `$PROTOREG_BUF`, or
//! `target/tools/buf-1.75.0` (installed there from npm on first use; `.ci/run` installs it
//! up front). Fails, never skips, when it cannot be had.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub fn buf() -> PathBuf {
    static BUF: OnceLock<PathBuf> = OnceLock::new();
    BUF.get_or_init(|| {
        if let Ok(p) = std::env::var("PROTOREG_BUF") {
            return PathBuf::from(p);
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/buf-1.75.0");
        let bin = dir.join("node_modules/.bin/buf");
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        if !bin.exists() {
            let o = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg("@bufbuild/buf@1.75.0")
                .output()
                .expect("npm runs");
            assert!(
                o.status.success() && bin.exists(),
                "buf 1.75 is needed (npm install @bufbuild/buf@1.75.0 failed): {}",
                text(&o)
            );
        }
        let o = Command::new(&bin)
            .arg("--version")
            .output()
            .expect("buf runs");
        assert!(text(&o).contains("1.75.0"), "buf --version: {}", text(&o));
        bin
    })
    .clone()
}

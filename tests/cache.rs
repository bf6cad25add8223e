//! The local cache (`$PROTOREG_CACHE_DIR`) never changes an answer: `protoreg breaking` with
//! a cold cache, a warm one, a partly stale one (a few files edited) and a damaged one prints
//! exactly what `--no-cache` prints, and exits the same, on buf's conformance cases and on
//! the googleapis release pair (`../shared/bench/corpus.sh`). Both fail loudly, never skip,
//! when `../shared` is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// stdout, stderr, exit code of `protoreg breaking ARGS` in `dir`, with the cache in `cache`
/// (or `--no-cache`).
fn breaking(dir: &Path, args: &[&str], cache: Option<&Path>) -> (String, String, i32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_protoreg"));
    cmd.current_dir(dir).arg("breaking").args(args).args([
        "--error-format",
        "json",
        "--cache-stats",
    ]);
    match cache {
        Some(c) => cmd.env("PROTOREG_CACHE_DIR", c),
        None => cmd
            .arg("--no-cache")
            .env("PROTOREG_CACHE_DIR", "/nonexistent/protoreg-cache"),
    };
    let out = cmd.output().expect("protoreg runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// (reused, units, everything compiled) from `--cache-stats`.
fn stats(stderr: &str) -> (usize, usize, bool) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("cache: "))
        .unwrap_or_else(|| panic!("no cache stats in {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (
        words[1].parse().expect("reused"),
        words[3].parse().expect("units"),
        line.ends_with("(everything)"),
    )
}

#[test]
fn conformance_cases_answer_the_same_with_and_without_cache() {
    let suite = root().join("../shared/conformance/buf-breaking");
    assert!(
        suite.is_dir(),
        "the conformance suite is missing: expected {} (../shared beside the project)",
        suite.display()
    );
    // One cache for every case: their files share names and must never share entries.
    let cache = tempfile::tempdir().unwrap();
    let mut cases = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&suite).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for case in entries
        .iter()
        .map(|e| e.path())
        .filter(|p| p.join("current").is_dir())
    {
        let args = ["current", "--against", "previous"];
        let plain = breaking(&case, &args, None);
        let cold = breaking(&case, &args, Some(cache.path()));
        let warm = breaking(&case, &args, Some(cache.path()));
        let name = case.display();
        assert_eq!((&cold.0, cold.2), (&plain.0, plain.2), "{name}: cold cache");
        assert_eq!((&warm.0, warm.2), (&plain.0, plain.2), "{name}: warm cache");
        if plain.2 != 1 {
            let (reused, units, full) = stats(&warm.1);
            assert!(
                !full && reused == units,
                "{name}: warm run reused {reused} of {units}"
            );
        }
        cases += 1;
    }
    assert!(cases >= 54, "expected buf's 54 cases, found {cases}");
}

/// Files of `dir` that no file of it imports (leaves), sorted.
fn leaves(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "proto") {
                all.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut imported = std::collections::BTreeSet::new();
    for f in &all {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        for l in text.lines() {
            if let Some(name) = l
                .trim()
                .strip_prefix("import ")
                .and_then(|rest| rest.split('"').nth(1))
            {
                imported.insert(name.to_string());
            }
        }
    }
    all.retain(|f| !imported.contains(f));
    all.sort();
    all
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success());
}

#[test]
fn googleapis_answers_the_same_with_and_without_cache() {
    let corpus = root().join("target/bench/corpus");
    let script = root().join("../shared/bench/corpus.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    let status = Command::new("bash")
        .arg(&script)
        .arg(&corpus)
        .status()
        .expect("bash runs corpus.sh");
    assert!(status.success(), "corpus.sh failed");
    let work = tempfile::tempdir().unwrap();
    copy_dir(&corpus.join("old"), &work.path().join("old"));
    copy_dir(&corpus.join("new"), &work.path().join("new"));
    let cache = tempfile::tempdir().unwrap();
    let args = ["new", "--against", "old"];
    let dir = work.path();

    let plain = breaking(dir, &args, None);
    assert_eq!(plain.2, 100, "{}", plain.1);
    assert!(
        plain.0.lines().count() > 2000,
        "googleapis has thousands of findings"
    );
    let cold = breaking(dir, &args, Some(cache.path()));
    assert_eq!((&cold.0, cold.2), (&plain.0, plain.2), "cold cache");
    assert!(stats(&cold.1).2, "a cold cache compiles everything");
    let warm = breaking(dir, &args, Some(cache.path()));
    assert_eq!((&warm.0, warm.2), (&plain.0, plain.2), "warm cache");
    let (reused, units, _) = stats(&warm.1);
    assert!(reused == units && units > 100, "warm: {reused} of {units}");

    // Three leaf files of the new side edited: one renumbers a field (breaking), one moves
    // to a sub-package (breaking, and joins two units), one only gains a message.
    let cloud: Vec<String> = leaves(&dir.join("new"))
        .into_iter()
        .filter(|f| f.starts_with("google/cloud/"))
        .filter(|f| {
            let t = std::fs::read_to_string(dir.join("new").join(f)).unwrap();
            t.contains(" = 1;\n") && t.contains("\npackage ")
        })
        .collect();
    assert!(cloud.len() > 10, "leaf files: {cloud:?}");
    let edit = |f: &str, change: &dyn Fn(String) -> String| {
        let p = dir.join("new").join(f);
        let t = std::fs::read_to_string(&p).unwrap();
        let changed = change(t.clone());
        assert_ne!(changed, t, "{f} unchanged");
        std::fs::write(&p, changed).unwrap();
    };
    edit(&cloud[0], &|t| t.replacen(" = 1;\n", " = 1001;\n", 1));
    edit(&cloud[cloud.len() / 2], &|t| {
        let start = t.find("\npackage ").unwrap() + 1;
        let end = start + t[start..].find(';').unwrap();
        // A sub-package: the file's relative type names still resolve.
        format!("{}.protoreg_moved{}", &t[..end], &t[end..])
    });
    edit(&cloud[cloud.len() - 1], &|t| {
        t + "\nmessage ProtoregCacheTestAddition {\n  string note = 1;\n}\n"
    });
    let plain = breaking(dir, &args, None);
    let partial = breaking(dir, &args, Some(cache.path()));
    assert_eq!(
        (&partial.0, partial.2),
        (&plain.0, plain.2),
        "after editing 3 files"
    );
    let (reused, units, full) = stats(&partial.1);
    assert!(
        !full && reused + 4 >= units && reused < units,
        "{reused} of {units}"
    );
    assert!(
        plain.0.contains("protoreg_moved"),
        "the package move is reported"
    );

    // Damaged entries (truncated, emptied, garbage; one unit in ten) are detected and
    // recomputed: those units are checked again, together.
    let mut findings = Vec::new();
    let mut stack = vec![cache.path().join("check/findings")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                findings.push(e.path());
            }
        }
    }
    findings.sort();
    let damage = |p: &Path, how: usize| {
        let raw = std::fs::read(p).unwrap();
        let bad: Vec<u8> = match how % 3 {
            0 => raw[..raw.len() / 2].to_vec(),
            1 => Vec::new(),
            _ => raw.iter().map(|b| b ^ 0x20).collect(),
        };
        std::fs::write(p, bad).unwrap();
    };
    let mut damaged = 0;
    for p in findings.iter().step_by(10) {
        damage(p, damaged);
        damaged += 1;
    }
    assert!(damaged > 30, "damaged {damaged} entries");
    let after = breaking(dir, &args, Some(cache.path()));
    assert_eq!((&after.0, after.2), (&plain.0, plain.2), "damaged cache");
    let (reused, units, full) = stats(&after.1);
    // (A few damaged entries are the pre-edit units', no longer asked for.)
    assert!(
        !full && units - reused + 3 >= damaged,
        "{reused} of {units}"
    );
    // A damaged index of what files declare: everything is compiled again.
    damage(&cache.path().join("check/facts/in/index"), 0);
    let after = breaking(dir, &args, Some(cache.path()));
    assert_eq!((&after.0, after.2), (&plain.0, plain.2), "damaged facts");
    assert!(stats(&after.1).2, "{}", after.1);
    let again = breaking(dir, &args, Some(cache.path()));
    assert_eq!((&again.0, again.2), (&plain.0, plain.2), "recomputed cache");
    let (reused, units, _) = stats(&again.1);
    assert_eq!(reused, units, "the damaged entries were replaced");
}

#[test]
fn concurrent_runs_share_one_cache_and_clean_empties_it() {
    let work = tempfile::tempdir().unwrap();
    let examples = root().join("proto-examples");
    // Two copies of the example estate; then one field of the current one renumbered.
    let (cur, prev) = (work.path().join("cur"), work.path().join("prev"));
    for side in [&cur, &prev] {
        std::fs::create_dir_all(side).unwrap();
        for m in ["common", "orders", "payments", "users"] {
            // Merged into one `acme/` tree, as the modules import each other.
            copy_dir(&examples.join(m).join("acme"), side);
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let args = ["cur", "--against", "prev"];
    let plain = breaking(work.path(), &args, None);
    assert_eq!(plain.2, 0, "{}", plain.1);
    let users = leaves(&cur)
        .into_iter()
        .find(|f| f.contains("/users/"))
        .expect("a users file");
    let p = cur.join(&users);
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, t.replacen(" = 1;", " = 101;", 1)).unwrap();
    let plain = breaking(work.path(), &args, None);
    assert_eq!(plain.2, 100, "{}", plain.1);
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let dir = work.path().to_path_buf();
            let cache = cache.path().to_path_buf();
            std::thread::spawn(move || breaking(&dir, &["cur", "--against", "prev"], Some(&cache)))
        })
        .collect();
    for r in runs {
        let r = r.join().unwrap();
        assert_eq!((&r.0, r.2), (&plain.0, plain.2), "{}", r.1);
    }
    let warm = breaking(work.path(), &args, Some(cache.path()));
    assert_eq!((&warm.0, warm.2), (&plain.0, plain.2));
    let (reused, units, _) = stats(&warm.1);
    assert_eq!(reused, units);

    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_protoreg"))
            .args(args)
            .env("PROTOREG_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        run(&["cache", "dir"]).trim(),
        cache.path().to_string_lossy()
    );
    assert!(run(&["cache", "clean"]).starts_with("removed "));
    assert!(!cache.path().join("check").exists());
    let cold = breaking(work.path(), &args, Some(cache.path()));
    assert_eq!((&cold.0, cold.2), (&plain.0, plain.2));
    assert!(stats(&cold.1).2, "cleaned: everything compiled again");
}

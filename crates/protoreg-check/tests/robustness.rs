//! Hostile input through the whole pipeline: seeded mutations of the example estate's real
//! `.proto` files (bytes flipped, lines dropped, duplicated or swapped, numbers and keywords
//! changed, text cut) are compiled and, when they compile, checked against the original in
//! every rule category, in both directions. Nothing may panic; every refusal must name a
//! file and a line; checking only the units that changed finds what the whole check finds. A bounded run with fixed seeds (`PROTOREG_FUZZ_ROUNDS` for longer runs).

use std::path::{Path, PathBuf};

mod common;

use common::all_categories;
use protoreg_check::{Options, check, check_changed};
use protoreg_schema::{SchemaError, SourceSet};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto-examples")
}

fn read_tree(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = format!("{prefix}{}", p.file_name().unwrap().to_str().unwrap());
        if p.is_dir() {
            read_tree(&p, &format!("{name}/"), out);
        } else if name.ends_with(".proto") {
            out.push((name, std::fs::read(&p).unwrap()));
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "message",
    "enum",
    "optional",
    "repeated",
    "required",
    "reserved",
    "oneof",
    "map<string, int32>",
    "int32",
    "string",
    "bytes",
    "group",
    "extend",
    "option",
    "edition",
    "syntax",
    "{",
    "}",
    ";",
    "=",
    "[",
    "]",
    "0",
    "-1",
    "536870912",
    "max",
    "to",
    "export",
    "local",
    "import",
    "\"",
];

fn mutate(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    for _ in 0..=rng.below(3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                let w = WORDS[rng.below(WORDS.len())];
                let at = rng.below(lines[i].len() + 1);
                lines[i].splice(at..at, format!(" {w} ").into_bytes());
            }
            4 if !lines[i].is_empty() => {
                let at = rng.below(lines[i].len());
                lines[i][at] = (rng.next() % 256) as u8;
            }
            5 => lines.truncate(i + 1),
            _ => {
                // Renumber: the first digit run on the line.
                if let Some(at) = lines[i].iter().position(u8::is_ascii_digit) {
                    lines[i][at] = b'0' + (rng.next() % 10) as u8;
                }
            }
        }
    }
    lines.join(&b'\n')
}

fn compile(files: &[(String, Vec<u8>)]) -> Result<protoreg_schema::Image, SchemaError> {
    SourceSet::from_memory(files.iter().cloned(), "")?.compile()
}

fn run_module(files: Vec<(String, Vec<u8>)>, seed: u64, rounds: usize) -> (usize, usize) {
    let original = compile(&files).expect("the example module compiles");
    let opts = all_categories();
    let without_imports = Options {
        exclude_imports: true,
        ..all_categories()
    };
    let mut rng = Rng(seed);
    let (mut compiled, mut refused, mut narrowed) = (0, 0, 0);
    for _ in 0..rounds {
        let mut mutated = files.clone();
        let k = rng.below(mutated.len());
        mutated[k].1 = mutate(&mut rng, &mutated[k].1);
        match compile(&mutated) {
            Ok(image) => {
                compiled += 1;
                for (cur, prev) in [(&image, &original), (&original, &image)] {
                    for opts in [&opts, &without_imports] {
                        let whole = check(cur, prev, opts).expect("check runs");
                        let (changed, scope) = check_changed(cur, prev, opts).expect("check runs");
                        assert_eq!(
                            changed, whole,
                            "checking only the changed units differs from the whole check (file {})",
                            mutated[k].0
                        );
                        if scope.checked < scope.units {
                            narrowed += 1;
                        }
                    }
                }
            }
            Err(SchemaError::Compile(diags)) => {
                refused += 1;
                for d in &diags.0 {
                    assert!(d.line > 0, "a refusal without a line: {d:?}");
                    assert!(!d.path.is_empty(), "a refusal without a file: {d:?}");
                }
            }
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }
    // Most mutants change one package of several: those checks were narrowed to it.
    assert!(
        narrowed > compiled,
        "only {narrowed} of {compiled} mutants' checks were narrowed to the changed units"
    );
    (compiled, refused)
}

#[test]
fn mutated_modules_never_panic_and_refusals_are_located() {
    let mut editions = Vec::new();
    read_tree(&examples().join("editions"), "", &mut editions);
    let mut acme = Vec::new();
    for module in ["common", "orders", "payments", "users"] {
        read_tree(&examples().join(module), "", &mut acme);
    }
    // `PROTOREG_FUZZ_ROUNDS` runs longer (the suite uses 1,000 a module).
    let rounds = std::env::var("PROTOREG_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (c1, r1) = run_module(editions, 0x0dd_c0ffee, rounds);
    let (c2, r2) = run_module(acme, 0xbad_5eed, rounds);
    println!("editions: {c1} compiled, {r1} refused; proto3: {c2} compiled, {r2} refused");
    // The run exercises both paths: some mutants still compile and get checked.
    assert!(c1 > 20 && c2 > 20 && r1 > 20 && r2 > 20);
}

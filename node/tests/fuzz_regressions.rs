//! Replays the fuzzers' inputs with the fuzzers' own assertions: every
//! minimized input that once made a fuzz target fail
//! (`fuzz/regressions/<target>/`) and the committed seed corpora
//! (`fuzz/corpus/<target>/`: RDB files and DUMP payloads written by Redis 7
//! and by the node, request streams). `fuzz/src/checks.rs` is compiled
//! into this test as it is into the fuzz targets, so the two cannot drift.
//! How the inputs were found and what each fixed: docs/fuzzing.md.

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for kind in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else { continue };
        files.extend(entries.map(|entry| entry.expect("directory entry").path()).filter(|path| path.is_file()));
    }
    files.sort();
    files
}

/// Runs `check` on every input of `target`, naming the file that fails.
fn replay(target: &str, minimum: usize, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(files.len() >= minimum, "expected at least {minimum} inputs for {target}, found {}", files.len());
    for file in files {
        let data = std::fs::read(&file).expect("read input");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails the fuzz checks", file.display());
    }
}

#[test]
fn resp_parser_regressions_and_seeds_pass_the_fuzz_checks() {
    replay("resp_parser", 10, checks::resp_parser::check);
}

#[test]
fn rdb_loader_regressions_and_seeds_pass_the_fuzz_checks() {
    replay("rdb_loader", 20, checks::rdb_loader::check);
}

#[test]
fn dump_payload_regressions_and_seeds_pass_the_fuzz_checks() {
    replay("dump_payload", 50, checks::dump_payload::check);
}

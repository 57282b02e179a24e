//! Every example's command line, as a new user first meets it: `--help` prints the usage and
//! exits 0; an unknown flag is an error that names it, with clap's exit code 2, instead of being
//! taken as input text or ignored.
//!
//! `cargo test` builds the examples before running the tests; a test run filtered to this file
//! builds the missing ones itself. A `--device` whose feature is not compiled in is checked by
//! `.ci/run`, on the examples built with `ndarray` alone.

use std::path::PathBuf;
use std::process::{Command, Output};

const EXAMPLES: [&str; 8] = [
    "char_lm",
    "fine_tune",
    "gpt2_generate",
    "import_pytorch",
    "recurrent_tour",
    "sentiment",
    "speech",
    "translate",
];

/// The example binary beside this test's (`target/<profile>/examples/NAME`), built if missing.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/examples_cli-<hash> -> target/<profile>/examples/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target directory");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

#[test]
fn every_example_has_help() {
    for name in EXAMPLES {
        let out = run(name, &["--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name} --help: {out:?}");
        assert!(
            stdout.contains(&format!("Usage: {name}")),
            "{name} --help printed:\n{stdout}"
        );
        assert!(
            stdout.contains("--device"),
            "{name} --help has no --device:\n{stdout}"
        );
    }
    let out = run("char_lm", &["generate", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("--from <RUN_DIR>") && stdout.contains("--temperature"),
        "{stdout}"
    );
}

#[test]
fn unknown_flags_are_errors_that_name_them() {
    for name in EXAMPLES {
        // Sentences are positional in sentiment, fine_tune and translate: a misspelt flag must not become
        // one of them.
        let out = run(name, &["--epoch", "1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} --epoch 1: {out:?}");
        assert!(stderr.contains("'--epoch'"), "{name} --epoch 1 said:\n{stderr}");
    }
    // A value of the wrong kind names the flag too.
    let out = run("char_lm", &["--steps", "many"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--steps") && stderr.contains("many"), "{stderr}");
    // The model's sizes come from the run when resuming: giving one is refused, not ignored.
    let out = run("char_lm", &["--resume", "runs/x", "--hidden", "8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

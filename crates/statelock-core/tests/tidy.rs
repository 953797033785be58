//! Tidiness rules for the whole workspace, checked as an ordinary test.
//!
//! Each rule has a rationale; keep the list short.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/<name> sits two levels below the root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    assert!(files.len() > 10, "found only {} files", files.len());
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Rationale: a reader opening any file learns first what it is for.
///
/// Files under `tests/common/` are `include!`d into several test targets, where an inner
/// doc comment is not allowed; they open with a plain `//` comment instead.
#[test]
fn every_file_starts_with_a_module_doc() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|(path, text)| {
            let included = path.components().any(|c| c.as_os_str() == "common");
            let first = text.lines().next().unwrap_or("");
            !(first.starts_with("//!") || included && first.starts_with("// "))
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! doc: {missing:#?}");
}

/// The files containing any of `needles`.
fn files_containing(needles: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(_, text)| needles.iter().any(|n| text.contains(n)))
        .map(|(p, _)| p.display().to_string())
        .collect()
}

/// Rationale: a test that is skipped proves nothing, and `should_panic` passes on any panic,
/// including the wrong one. Assert on the error instead.
#[test]
fn no_ignored_or_should_panic_tests() {
    let offenders = files_containing(&[concat!("#[", "ignore"), concat!("#[", "should_panic")]);
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Rationale: `dbg!` and `todo!` are for work in progress, not for main.
#[test]
fn no_debugging_leftovers() {
    let offenders = files_containing(&[
        concat!("dbg", "!("),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ]);
    assert!(offenders.is_empty(), "{offenders:#?}");
}

//! The committed FlatBuffers code must be what flatc generates from `schema/journal.fbs`.
//!
//! Needs `flatc` 25.12.19 (the version of the `flatbuffers` crate): `$WEFT_FLATC`, or
//! `flatc` on the PATH. `tests/run` installs it and sets `WEFT_REQUIRE_TOOLS=1`, which
//! turns a missing flatc into a failure instead of a skip.

use std::path::PathBuf;
use std::process::Command;

const FLATC_VERSION: &str = "25.12.19";

#[test]
fn generated_code_is_fresh() {
    let flatc = std::env::var("WEFT_FLATC").unwrap_or_else(|_| "flatc".into());
    let version = match Command::new(&flatc).arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Err(e) => {
            assert!(
                std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
                "flatc not found ({flatc}: {e}); tests/run installs it"
            );
            eprintln!("skipped: flatc not found ({e})");
            return;
        }
    };
    assert!(
        version.ends_with(FLATC_VERSION),
        "{flatc} is `{version}`; the generated code is made with flatc {FLATC_VERSION}"
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(&flatc)
        .arg("--rust")
        .arg("-o")
        .arg(out.path())
        .arg(root.join("schema/journal.fbs"))
        .status()
        .unwrap();
    assert!(status.success(), "flatc failed");
    let fresh = std::fs::read_to_string(out.path().join("journal_generated.rs")).unwrap();
    let committed =
        std::fs::read_to_string(root.join("src/generated/journal_generated.rs")).unwrap();
    assert!(
        fresh == committed,
        "journal/src/generated/journal_generated.rs is stale: run \
         `flatc --rust -o src/generated schema/journal.fbs` in journal/"
    );
}

//! `ui/src/bindings.ts` is generated from the commands and events (tauri-specta) and committed;
//! this test fails when it is stale. `CALLBOX_UPDATE_BINDINGS=1 cargo test -p callbox-desktop
//! --test bindings` rewrites it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn the_typescript_bindings_are_current() {
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    let fresh = std::env::temp_dir().join(format!("callbox-bindings-{}.ts", std::process::id()));
    callbox_desktop::specta_builder()
        .export(
            specta_typescript::Typescript::default()
                .header("// Generated from the Rust commands and events by tauri-specta: do not edit.\n// Regenerate: CALLBOX_UPDATE_BINDINGS=1 cargo test -p callbox-desktop --test bindings"),
            &fresh,
        )
        .expect("bindings export");
    let fresh_text = std::fs::read_to_string(&fresh).unwrap();
    let _ = std::fs::remove_file(&fresh);
    if std::env::var_os("CALLBOX_UPDATE_BINDINGS").is_some() {
        std::fs::write(&committed, &fresh_text).unwrap();
        return;
    }
    let committed_text = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        committed_text == fresh_text,
        "ui/src/bindings.ts is stale: run CALLBOX_UPDATE_BINDINGS=1 cargo test -p callbox-desktop --test bindings"
    );
}

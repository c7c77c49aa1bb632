//! Embeds `policies/*.sql` into the binary (sorted by name), so that a built server
//! applies and checks exactly the policy files it was built from, and rebuilds when
//! a migration or a policy file is added, changed or removed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a build script fails the build by panicking, with the message"
)]

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=policies");
    println!("cargo:rerun-if-changed=sql");

    // At run time: a build script compiled in another checkout (a copied target/)
    // must read this one's files.
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("policies");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("policies/ exists")
        .map(|entry| entry.expect("readable policies/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();

    let mut out = String::from("&[\n");
    for path in files {
        let table = path.file_stem().unwrap().to_string_lossy().into_owned();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        // Relative to the manifest, not absolute: the generated file must not name the
        // directory it was built in (a clone built with a shared target dir would
        // leave its own paths behind).
        out.push_str(&format!(
            "    PolicyFile {{ table: {table:?}, sql: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/policies/{file}\")) }},\n"
        ));
    }
    out.push_str("]\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("policy_files.rs");
    fs::write(dest, out).expect("write policy_files.rs");
}

//! The checked-in header is what cbindgen makes of the current source
//! (`RINGCAST_BLESS=1` rewrites it).

use std::path::Path;

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let path = dir.join("include/ringcast.h");
    if std::env::var_os("RINGCAST_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "ffi/include/ringcast.h is stale: regenerate it with \
         RINGCAST_BLESS=1 cargo test -p ringcast-ffi --test header"
    );
}

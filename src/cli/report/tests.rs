use super::*;

#[test]
fn out_is_replaced_whole_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, "old").unwrap();
    write_atomically(&path, b"new page").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new page");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("report.html")]);
    // A directory that does not exist: an error, nothing written.
    assert!(write_atomically(&dir.path().join("no/such/report.html"), b"x").is_err());
}

#[test]
fn sha256_is_the_standard_digest() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

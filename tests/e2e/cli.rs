//! The `khop` command line as a shell user meets it.

use std::process::{Command, Stdio};

use crate::support::khop;

/// `khop status | head -1` closed the pipe before khop finished writing, and `println!` panicked
/// on it. A pipe whose reader is gone before the first line is written makes every write fail.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(khop())
        .args(["datagen", "--print-config"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A peer or coordinator address without its scheme could be dialled by no one: the cluster never
/// formed and nothing said why. It is refused at once with the form expected.
#[test]
fn an_address_without_a_scheme_is_refused_with_the_form_expected() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = Command::new(khop())
        .args(["coordinator", "--id", "1", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--peers", "1=127.0.0.1:7400", "--bootstrap"])
        .output()
        .unwrap();
    let status = Command::new(khop())
        .args(["status", "--coordinators", "127.0.0.1:7400"])
        .output()
        .unwrap();
    for (out, flag) in [(coordinator, "--peers"), (status, "--coordinators")] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let expected =
            format!("{flag}: `127.0.0.1:7400`: give the scheme, as in http://127.0.0.1:7400");
        assert!(stderr.contains(&expected), "{stderr}");
    }
}

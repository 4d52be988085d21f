//! A real S3 server for the object-store tests: moto's, started by `tests/s3/moto-server.sh` (which
//! installs it from PyPI on first use) on a free 127.0.0.1 port, killed on drop. The tests talk to
//! it over plain HTTP (moto does not check signatures); khop talks to it as to any S3 store, through
//! the `AWS_*` environment of [`S3Server::env`].

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "khop";

pub struct S3Server {
    child: Child,
    address: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/s3/moto-server.sh");
        let port = TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("bash")
            .arg(&script)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        let mut server = S3Server {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        // The first start installs moto (a minute or two); later ones take a second or two. The
        // wait is on the first request itself, not on a connect: a server that has just bound its
        // port can still refuse the next connection while it starts.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the S3 server ({}) exited: {status}", script.display());
            }
            match server.try_request("PUT", &format!("/{BUCKET}"), &[]) {
                // Status 0: the connection closed before a response (the server still starting).
                Ok((status, body)) if status != 0 => {
                    assert_eq!(status, 200, "creating the bucket: {body}");
                    break;
                }
                Ok(_) => assert!(Instant::now() < deadline, "the S3 server did not start"),
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "the S3 server did not start: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// What a khop process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://{}", self.address)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "khop-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "khop-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// One HTTP/1.1 request; the status and the body.
    fn request(&self, method: &str, target: &str, body: &[u8]) -> (u16, String) {
        self.try_request(method, target, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    }

    fn try_request(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(&self.address)?;
        // An Authorization header naming the test's access key, with no real signature (moto does
        // not check it): without one, moto refuses (403) every request to an object that exists,
        // so a test could not upload a new version of a file.
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=khop-test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, \
             Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string());
        Ok((status, body))
    }

    /// Uploads a local file as `key` of the bucket.
    pub fn put(&self, key: &str, file: &Path) {
        let bytes = std::fs::read(file).unwrap();
        let (status, body) = self.request("PUT", &format!("/{BUCKET}/{key}"), &bytes);
        assert_eq!(status, 200, "PUT {key}: {body}");
    }

    /// The keys of the bucket under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.request(
            "GET",
            &format!("/{BUCKET}?list-type=2&prefix={prefix}"),
            &[],
        );
        assert_eq!(status, 200, "listing {prefix}: {body}");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Integration tests for `tinycats_data::fetch` against a tiny loopback HTTP/1.1 server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tinycats_data::fetch::{download_verified, fetch_all, Manifest, RemoteFile};
use tinycats_data::hashing::{sha256_file, sha256_hex};

/// 300 KB of deterministic pseudo-random bytes (xorshift64).
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..300 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>, // lower-case names
}

/// What the server sends back for one request.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close (simulates a dropped connection).
    cut_after: Option<usize>,
}

impl Reply {
    fn full(body: &[u8]) -> Reply {
        Reply { status: 200, headers: vec![], body: body.to_vec(), cut_after: None }
    }
    fn cut(body: &[u8], after: usize) -> Reply {
        Reply { status: 200, headers: vec![], body: body.to_vec(), cut_after: Some(after) }
    }
    fn status(code: u16) -> Reply {
        Reply { status: code, headers: vec![], body: b"nope".to_vec(), cut_after: None }
    }
    /// Honours `Range: bytes=N-` if present, else the full body.
    fn ranged(body: &[u8], req: &Seen) -> Reply {
        let start = req
            .headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        match start {
            Some(s) if s < body.len() => Reply {
                status: 206,
                headers: vec![(
                    "Content-Range".into(),
                    format!("bytes {s}-{}/{}", body.len() - 1, body.len()),
                )],
                body: body[s..].to_vec(),
                cut_after: None,
            },
            Some(_) => Reply::status(416),
            None => Reply::full(body),
        }
    }
}

type Handler = Box<dyn FnMut(usize, &Seen) -> Reply + Send>;

/// Loopback server: serves at most `max_requests` requests, stops when dropped.
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(max_requests: usize, mut handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            while served < max_requests && !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(req) = read_request(&stream) {
                            seen2.lock().unwrap().push(req.clone());
                            let reply = handler(served, &req);
                            write_reply(stream, &reply);
                        }
                        served += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
        });
        Server { base, seen, stop, thread: Some(thread) }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Seen> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Seen { path, headers })
}

fn write_reply(mut stream: TcpStream, reply: &Reply) {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let body = &reply.body[..reply.cut_after.unwrap_or(reply.body.len()).min(reply.body.len())];
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn remote(server: &Server, name: &str, body: &[u8]) -> RemoteFile {
    RemoteFile {
        name: name.into(),
        url: server.url(name),
        size: Some(body.len() as u64),
        sha256: sha256_hex(body),
    }
}

fn part_of(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.part"))
}

#[test]
fn plain_download_succeeds() {
    let body = payload();
    let b = body.clone();
    let server = Server::start(1, Box::new(move |_, _| Reply::full(&b)));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nested/dest"); // created on demand
    let file = remote(&server, "images.tar.gz", &body);

    let mut calls = Vec::new();
    let path = download_verified(&file, &dest, &mut |n, got, total| calls.push((n.to_string(), got, total)))
        .unwrap();

    assert_eq!(path, dest.join("images.tar.gz"));
    assert_eq!(sha256_file(&path).unwrap(), file.sha256);
    assert!(!part_of(&dest, "images.tar.gz").exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/images.tar.gz");
    assert!(!seen[0].headers.contains_key("range"), "fresh download must not send Range");
    let last = calls.last().unwrap();
    assert_eq!(last, &("images.tar.gz".to_string(), body.len() as u64, Some(body.len() as u64)));
    assert!(calls.windows(2).all(|w| w[0].1 <= w[1].1), "progress must be monotonic");
}

#[test]
fn interrupted_transfer_resumes_with_range() {
    let body = payload();
    let half = body.len() / 2;
    let b = body.clone();
    let server = Server::start(
        2,
        Box::new(move |i, req| if i == 0 { Reply::cut(&b, half) } else { Reply::ranged(&b, req) }),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "annotations.tar.gz", &body);
    let part = part_of(dir.path(), &file.name);

    let err = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("interrupted") && msg.contains("resum"), "{msg}");
    assert!(!dir.path().join(&file.name).exists(), "no final file after interruption");
    let got = std::fs::metadata(&part).unwrap().len() as usize;
    assert!(got > 0 && got <= half, "part has {got} bytes, sent {half}");
    assert_eq!(std::fs::read(&part).unwrap(), body[..got], "part is a prefix of the body");

    let path = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap();
    assert_eq!(sha256_file(&path).unwrap(), file.sha256);
    assert!(!part.exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers.get("range").map(String::as_str), Some(format!("bytes={got}-").as_str()));
}

#[test]
fn corrupted_download_is_deleted() {
    let body = payload();
    let mut bad = body.clone();
    bad[1234] ^= 0xff; // same length, different content
    let server = Server::start(1, Box::new(move |_, _| Reply::full(&bad)));
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "images.tar.gz", &body);

    let err = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("sha256"), "{msg}");
    assert!(msg.contains(&file.sha256), "error names the expected hash: {msg}");
    assert!(msg.contains("images.tar.gz"), "{msg}");
    assert!(!dir.path().join("images.tar.gz").exists());
    assert!(!part_of(dir.path(), "images.tar.gz").exists());
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let body = payload();
    let half = body.len() / 2;
    let b = body.clone();
    // Never honours Range: first reply is cut, second is the full body with 200.
    let server = Server::start(
        2,
        Box::new(move |i, _| if i == 0 { Reply::cut(&b, half) } else { Reply::full(&b) }),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "images.tar.gz", &body);

    assert!(download_verified(&file, dir.path(), &mut |_, _, _| {}).is_err());
    assert!(part_of(dir.path(), &file.name).exists());

    let path = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), body.len() as u64, "not appended twice");
    assert_eq!(sha256_file(&path).unwrap(), file.sha256);
    assert!(!part_of(dir.path(), &file.name).exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].headers.contains_key("range"), "resume attempt must still ask for a Range");
}

#[test]
fn http_404_names_status_and_url() {
    let server = Server::start(1, Box::new(|_, _| Reply::status(404)));
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "missing.tar.gz", b"whatever");

    let err = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("404"), "{msg}");
    assert!(msg.contains(&file.url), "{msg}");
    assert!(!dir.path().join("missing.tar.gz").exists());
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn existing_verified_file_makes_no_request() {
    let body = payload();
    let server = Server::start(1, Box::new(|_, _| Reply::status(500)));
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "images.tar.gz", &body);
    std::fs::write(dir.path().join("images.tar.gz"), &body).unwrap();

    let mut last = None;
    let path = download_verified(&file, dir.path(), &mut |_, got, total| last = Some((got, total))).unwrap();
    assert_eq!(path, dir.path().join("images.tar.gz"));
    assert_eq!(last, Some((body.len() as u64, Some(body.len() as u64))), "reported complete");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.seen().len(), 0, "no network for an already verified file");
}

#[test]
fn existing_mismatching_file_is_kept_and_reported() {
    let body = payload();
    let server = Server::start(1, Box::new(|_, _| Reply::status(500)));
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "images.tar.gz", &body);
    let final_path = dir.path().join("images.tar.gz");
    std::fs::write(&final_path, b"user's own file").unwrap();

    let err = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("sha256") && msg.contains(&file.sha256), "{msg}");
    assert!(msg.contains(&sha256_hex(b"user's own file")), "names the actual hash: {msg}");
    assert_eq!(std::fs::read(&final_path).unwrap(), b"user's own file", "never deleted");
    assert_eq!(server.seen().len(), 0);
}

#[test]
fn complete_part_is_only_verified() {
    let body = payload();
    let server = Server::start(1, Box::new(|_, _| Reply::status(500)));
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "images.tar.gz", &body);
    std::fs::write(part_of(dir.path(), &file.name), &body).unwrap();

    let path = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap();
    assert_eq!(sha256_file(&path).unwrap(), file.sha256);
    assert!(!part_of(dir.path(), &file.name).exists());
    assert_eq!(server.seen().len(), 0);
}

#[test]
fn range_not_satisfiable_restarts_once_from_zero() {
    let body = payload();
    let b = body.clone();
    let server = Server::start(
        2,
        Box::new(move |_, req| {
            if req.headers.contains_key("range") { Reply::status(416) } else { Reply::full(&b) }
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = remote(&server, "images.tar.gz", &body);
    std::fs::write(part_of(dir.path(), &file.name), b"stale partial bytes").unwrap();

    let path = download_verified(&file, dir.path(), &mut |_, _, _| {}).unwrap();
    assert_eq!(sha256_file(&path).unwrap(), file.sha256);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers.get("range").map(String::as_str), Some("bytes=19-"));
    assert!(!seen[1].headers.contains_key("range"));
}

#[test]
fn fetch_all_uses_mirror_and_keeps_order() {
    let a = payload();
    let b: Vec<u8> = a.iter().rev().copied().take(1000).collect();
    let (a2, b2) = (a.clone(), b.clone());
    let server = Server::start(
        2,
        Box::new(move |_, req| if req.path == "/a.bin" { Reply::full(&a2) } else { Reply::full(&b2) }),
    );
    let manifest = Manifest {
        files: vec![
            RemoteFile { name: "a.bin".into(), url: "http://invalid/a".into(), size: None, sha256: sha256_hex(&a) },
            RemoteFile {
                name: "b.bin".into(),
                url: "http://invalid/b".into(),
                size: Some(b.len() as u64),
                sha256: sha256_hex(&b),
            },
        ],
    }
    .with_mirror(&format!("{}/", server.base));
    let dir = tempfile::tempdir().unwrap();

    let paths = fetch_all(&manifest, dir.path(), &mut |_, _, _| {}).unwrap();
    assert_eq!(paths, vec![dir.path().join("a.bin"), dir.path().join("b.bin")]);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), a);
    assert_eq!(std::fs::read(&paths[1]).unwrap(), b);
    let seen: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(seen, vec!["/a.bin", "/b.bin"]);
}

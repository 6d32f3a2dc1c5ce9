//! The server under hostile connections: slow or silent clients, too many
//! connections, forged forwarded addresses, and file modes of the data directory.

use std::num::NonZero;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

pub(crate) fn address(portal: &TestPortal) -> String {
    portal.url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; returns how long that took and
/// what was received, or `None` if it is still open after `limit`.
pub(crate) async fn closed_within(
    stream: &mut TcpStream,
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A portal behind reverse proxies: `X-Forwarded-For` is believed from `proxies`.
pub(crate) async fn behind_proxies(proxies: &[&str]) -> TestPortal {
    let proxies: Vec<String> = proxies.iter().map(|p| p.to_string()).collect();
    TestPortal::start_with(move |c| {
        c.server.trust_proxy_headers = true;
        c.server.trusted_proxies = proxies;
    })
    .await
}

/// Opens `n` connections to `addr` that send nothing, and gives the server a
/// moment to accept them.
pub(crate) async fn hold_open(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    held
}

/// Connects to `addr` and sends `head`, the first bytes of a request.
pub(crate) async fn send_head(addr: &str, head: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head).await.unwrap();
    s
}

/// Short timeouts for requests that dawdle: one second for the head, one second
/// of grace for a body sent at under 500 bytes a second.
pub(crate) fn slow_limits(c: &mut portal::Config) {
    c.server.header_timeout_seconds = NonZero::new(1).unwrap();
    c.server.body_timeout_seconds = NonZero::new(1).unwrap();
    c.server.body_min_bytes_per_second = 500;
}

/// Sends a request's `head` to `addr`, then writes `piece` every `every` (until
/// a write fails, for at most 8 s) while waiting up to 6 s for the server to
/// close the connection. Returns whether it did, and how many pieces were written.
pub(crate) async fn drip_until_cut(
    addr: &str,
    head: &[u8],
    piece: &'static [u8],
    every: Duration,
) -> (bool, usize) {
    let stream = send_head(addr, head).await;
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let dripper = tokio::spawn(async move {
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(8) && write.write_all(piece).await.is_ok() {
            sent += 1;
            tokio::time::sleep(every).await;
        }
        sent
    });
    let mut reply = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(6), read.read_to_end(&mut reply)).await;
    // Once the server has closed, a write fails and the dripping stops.
    let sent = dripper.await.unwrap();
    (cut.is_ok(), sent)
}

pub(crate) async fn healthy(portal: &TestPortal) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    client
        .get(format!("{}/healthz", portal.url))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
async fn silent_and_slow_clients_are_cut_off() {
    let portal = TestPortal::start_with(slow_limits).await;
    let addr = address(&portal);

    // A connection that sends nothing.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    // A request head sent one byte at a time, slowly (slowloris).
    let mut loris = TcpStream::connect(&addr).await.unwrap();
    let drip_head = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa" {
            if loris.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        loris
    });
    let (took, _) = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("a silent connection is closed");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    let mut loris = drip_head.await.unwrap();
    let (_, reply) = closed_within(&mut loris, Duration::from_secs(5))
        .await
        .expect("a slowly dripped request head is cut off");
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"));

    // A request body of 10,000 bytes dripped at a few bytes a second.
    let head = b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\n";
    let (cut, sent) = drip_until_cut(&addr, head, b"e", Duration::from_millis(250)).await;
    assert!(cut, "the slow body was not cut off within 6 s");
    assert!(sent < 100, "the server waited for {sent} dripped bytes");

    // Honest clients are still served.
    assert!(healthy(&portal).await);
    portal.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_a_download_is_disconnected() {
    let portal =
        TestPortal::start_with(|c| c.server.send_timeout_seconds = NonZero::new(1).unwrap()).await;
    let client = portal
        .client("Jane Doe", "jane@example.com", "482913")
        .await;
    // Larger than every socket buffer between the server and this test.
    let big: Vec<u8> = (0..24 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let id = client.upload("big.bin", &big).await;
    let resp = client
        .get_request(&format!("/documents/{id}/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Read nothing for a while: the server's writes stall and it gives up.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut body = resp.bytes_stream();
    let mut got = 0usize;
    let mut cut = false;
    while let Some(piece) = body.next().await {
        match piece {
            Ok(bytes) => got += bytes.len(),
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(
        cut && got < big.len(),
        "the whole file ({got} bytes) was delivered to a client that stopped reading"
    );
    assert!(healthy(&portal).await);
    portal.stop().await;
}

#[tokio::test]
async fn connections_are_capped_in_total_and_per_address() {
    let portal = TestPortal::start_with(|c| {
        c.server.header_timeout_seconds = NonZero::new(30).unwrap();
        c.server.max_connections_per_ip = 4;
    })
    .await;
    let addr = address(&portal);
    let idle = hold_open(&addr, 4).await;
    let mut fifth = TcpStream::connect(&addr).await.unwrap();
    let (took, _) = closed_within(&mut fifth, Duration::from_secs(5))
        .await
        .expect("a fifth connection from one address is refused");
    assert!(took < Duration::from_secs(5));
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        healthy(&portal).await,
        "closed connections free their places"
    );
    portal.stop().await;

    let portal = TestPortal::start_with(|c| {
        c.server.header_timeout_seconds = NonZero::new(30).unwrap();
        c.server.max_connections = NonZero::new(3).unwrap();
        c.server.max_connections_per_ip = 0;
    })
    .await;
    let addr = address(&portal);
    let idle = hold_open(&addr, 3).await;
    assert!(!healthy(&portal).await, "a fourth connection waits");
    drop(idle);
    assert!(healthy(&portal).await, "and is served once one closes");
    portal.stop().await;
}

fn forwarded<'a>(lines: &[&'a str]) -> Vec<(&'static str, &'a str)> {
    lines
        .iter()
        .map(|line| ("x-forwarded-for", *line))
        .collect()
}

/// The address the portal recorded for a failed sign-in made with `headers`.
pub(crate) async fn recorded_address(
    portal: &TestPortal,
    headers: Vec<(&'static str, &str)>,
) -> String {
    let b = Browser::with_headers(&portal.url, &headers);
    b.enter_pin("jane@example.com", "000001").await;
    portal.query_text(
        "SELECT ip FROM audit_log WHERE event = 'signin_failed' ORDER BY seq DESC LIMIT 1",
    )
}

#[tokio::test]
async fn only_a_trusted_proxy_names_the_client_address() {
    let portal = behind_proxies(&["127.0.0.1", "10.0.0.0/8"]).await;
    portal.invite("Jane Doe", "jane@example.com").await;
    // The client forges a line; the proxy (HAProxy's default) appends its own.
    let ip = recorded_address(&portal, forwarded(&["6.6.6.6", "203.0.113.7"])).await;
    assert_eq!(ip, "203.0.113.7");
    // One line, and a chain of trusted proxies after the client.
    let ip = recorded_address(&portal, forwarded(&["6.6.6.6, 203.0.113.8, 10.1.2.3"])).await;
    assert_eq!(ip, "203.0.113.8");
    // Garbage after the real entry does not let an earlier forged entry win.
    let ip = recorded_address(&portal, forwarded(&["6.6.6.6", "not-an-address"])).await;
    assert_eq!(ip, "127.0.0.1");
    portal.stop().await;

    // From a peer that is not a listed proxy, the header is ignored.
    let portal = behind_proxies(&["192.0.2.1"]).await;
    portal.invite("Jane Doe", "jane@example.com").await;
    let ip = recorded_address(&portal, forwarded(&["203.0.113.7"])).await;
    assert_eq!(ip, "127.0.0.1");
    portal.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_to_the_portal_user() {
    use std::os::unix::fs::PermissionsExt;
    let portal = TestPortal::start_with(|c| {
        c.mail.smtp_host = String::new();
    })
    .await;
    portal
        .invite_from("Jane Doe", "jane@example.com", "127.0.0.1")
        .await;
    let data = portal.dir.path().join("data");
    let outbox = data.join("outbox");
    portal
        .eventually_i64(
            "SELECT count(*) FROM mail_queue WHERE sent_at IS NOT NULL",
            1,
        )
        .await;
    let mut checked = 0;
    let mut pending = vec![data.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
            checked += 1;
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(
        std::fs::read_dir(&outbox).unwrap().count() >= 1,
        "an .eml was written"
    );
    assert!(data.join("portal.db-wal").exists());
    assert!(checked > 5);
    portal.stop().await;
}

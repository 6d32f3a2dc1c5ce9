//! Document benchmarks (issue #3). Run with:
//!
//!     cargo bench --bench documents            # 1 GiB file, 100,000 search documents
//!     PORTAL_BENCH_MB=256 PORTAL_BENCH_DOCS=20000 cargo bench --bench documents
//!
//! It prints figures; it asserts nothing (targets are compared in the output):
//! - upload and download of one large file through the real `portal serve`
//!   process on loopback, with that process's peak RSS growth;
//! - for comparison, the raw disk write and read rate of the same amount of data
//!   and the rate of the encryption alone, and the combined disk+encryption limit;
//! - search over many indexed documents: indexing rate and query latency.
// A benchmark may unwrap and panic: a failure ends the run with its reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

#[path = "common.rs"]
mod common;
use common::Server;

const MB: f64 = 1024.0 * 1024.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let size_mb = env_usize("PORTAL_BENCH_MB", 1024);
    let docs = env_usize("PORTAL_BENCH_DOCS", 100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "# Portal document benchmarks ({} MiB file, {} search documents)",
        size_mb, docs
    );
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        common::load_average()
    );

    let bytes = size_mb * 1024 * 1024;
    let (disk_write, disk_read) = disk_rates(dir.path(), bytes);
    let encrypt = encryption_rate(bytes.min(512 * 1024 * 1024));
    let limit_write = 1.0 / (1.0 / disk_write + 1.0 / encrypt);
    let limit_read = 1.0 / (1.0 / disk_read + 1.0 / encrypt);
    println!("\n## Baselines");
    println!("disk write (fsync)        {disk_write:8.1} MB/s");
    println!("disk read                 {disk_read:8.1} MB/s");
    println!("encryption alone          {encrypt:8.1} MB/s  (ChaCha20-Poly1305, 64 KiB chunks)");
    println!("disk+encryption, write    {limit_write:8.1} MB/s");
    println!("disk+encryption, read     {limit_read:8.1} MB/s");

    println!("\n## Through the HTTP server");
    let server = Server::start(
        dir.path(),
        "[documents]\nmax_file_mb = 8192\nclient_quota_mb = 16384\n",
    )
    .await;
    let (up, down, rss) = server.transfer(bytes).await;
    println!(
        "upload                    {up:8.1} MB/s  (target >= {:.1}, half the write limit)",
        limit_write / 2.0
    );
    println!(
        "download                  {down:8.1} MB/s  (target >= {:.1}, half the read limit)",
        limit_read / 2.0
    );
    println!(
        "server peak RSS growth    {:8.1} MiB   (target < 64)",
        rss as f64 / MB
    );
    drop(server);

    println!("\n## Search");
    let (rate, p50, p99) = search(dir.path(), docs);
    println!("indexing                  {rate:8.0} documents/s");
    println!(
        "query latency p50         {:8.2} ms",
        p50.as_secs_f64() * 1000.0
    );
    println!(
        "query latency p99         {:8.2} ms  (target < 20)",
        p99.as_secs_f64() * 1000.0
    );
}

/// Writes `bytes` to a file with fsync, then reads it back.
fn disk_rates(dir: &Path, bytes: usize) -> (f64, f64) {
    let path = dir.join("disk-baseline.bin");
    let block = vec![0x5au8; 1024 * 1024];
    let started = Instant::now();
    let mut f = std::fs::File::create(&path).unwrap();
    for _ in 0..bytes / block.len() {
        f.write_all(&block).unwrap();
    }
    f.sync_all().unwrap();
    let write = bytes as f64 / MB / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut f = std::fs::File::open(&path).unwrap();
    let mut buf = vec![0u8; 1024 * 1024];
    while f.read(&mut buf).unwrap() > 0 {}
    let read = bytes as f64 / MB / started.elapsed().as_secs_f64();
    std::fs::remove_file(&path).unwrap();
    (write, read)
}

fn encryption_rate(bytes: usize) -> f64 {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut chunk = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    for i in 0..bytes / chunk.len() {
        let mut nonce = [0u8; 12];
        nonce[4..8].copy_from_slice(&(i as u32).to_be_bytes());
        let tag = cipher
            .encrypt_in_place_detached(&nonce.into(), b"", &mut chunk)
            .unwrap();
        std::hint::black_box(tag);
    }
    bytes as f64 / MB / started.elapsed().as_secs_f64()
}

impl Server {
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Uploads `bytes` in one streamed request, downloads it back, and returns the
    /// rates and the server's peak RSS growth over its resting size.
    async fn transfer(&self, bytes: usize) -> (f64, f64, u64) {
        // Reset the peak-RSS mark so the figure is this transfer's alone.
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
        let rest = self.status_kib("VmRSS:");
        let created = self
            .http
            .post(self.at("/uploads"))
            .header("X-CSRF-Token", &self.csrf)
            .header("Upload-Length", bytes.to_string())
            .header("Upload-Metadata", "filename YmVuY2guYmlu")
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{:?}", created.text().await);
        let location = created.headers()["location"].to_str().unwrap().to_string();
        let block = bytes::Bytes::from(vec![0xa5u8; 1024 * 1024]);
        let blocks = bytes / block.len();
        let body = futures_util::stream::iter(
            (0..blocks).map(move |_| Ok::<_, std::io::Error>(block.clone())),
        );
        let started = Instant::now();
        let done = self
            .http
            .patch(self.at(&location))
            .header("X-CSRF-Token", &self.csrf)
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/offset+octet-stream")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .unwrap();
        let up = bytes as f64 / MB / started.elapsed().as_secs_f64();
        assert_eq!(done.status(), 204);
        let id = done.headers()["upload-complete"]
            .to_str()
            .unwrap()
            .to_string();

        let started = Instant::now();
        let download = self.http.get(self.at(&format!("/documents/{id}/download")));
        let mut stream = download.send().await.unwrap().bytes_stream();
        let mut got = 0usize;
        while let Some(chunk) = stream.next().await {
            got += chunk.unwrap().len();
        }
        assert_eq!(got, bytes);
        let down = bytes as f64 / MB / started.elapsed().as_secs_f64();
        let peak = self.status_kib("VmHWM:");
        (up, down, peak.saturating_sub(rest) * 1024)
    }
}

/// Indexes `count` synthetic documents over 500 clients, then times queries.
fn search(dir: &Path, count: usize) -> (f64, Duration, Duration) {
    use portal::infra::search::{Entry, SearchIndex};
    let words = [
        "income",
        "wages",
        "depreciation",
        "rental",
        "property",
        "schedule",
        "dividends",
        "interest",
        "mortgage",
        "charity",
        "donation",
        "medical",
        "expenses",
        "retirement",
        "ira",
        "brokerage",
        "statement",
        "k1",
        "partnership",
        "estimated",
        "payment",
        "federal",
        "state",
        "refund",
        "w2",
        "1099",
        "tuition",
        "childcare",
        "business",
        "mileage",
        "office",
        "equipment",
        "insurance",
        "premium",
        "capital",
        "gains",
        "loss",
        "crypto",
    ];
    let index = SearchIndex::open(&dir.join("search-bench")).unwrap();
    let mut seed = 42u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let texts: Vec<(String, i64, String, String)> = (0..count)
        .map(|i| {
            let body: Vec<&str> = (0..200)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect();
            (
                format!("doc{i}"),
                (i % 500) as i64,
                format!("{} statement {i}.pdf", words[i % words.len()]),
                body.join(" "),
            )
        })
        .collect();
    let started = Instant::now();
    for batch in texts.chunks(10_000) {
        let entries: Vec<Entry> = batch
            .iter()
            .map(|(id, owner, name, content)| Entry {
                id,
                owner: *owner,
                name,
                folder: "2025 / Returns",
                message: "",
                content,
            })
            .collect();
        index.upsert(&entries).unwrap();
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let owner = (next() % 500) as i64;
        let q = format!(
            "{} {}",
            words[(next() % words.len() as u64) as usize],
            words[(next() % words.len() as u64) as usize]
        );
        let started = Instant::now();
        std::hint::black_box(index.search(owner, &q, 50).unwrap());
        latencies.push(started.elapsed());
    }
    latencies.sort();
    (
        rate,
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
    )
}

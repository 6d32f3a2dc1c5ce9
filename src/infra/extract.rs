//! Reading the text inside a PDF in a separate, resource-limited process.
//!
//! A PDF parser allocates what the file asks for: a 2 MB upload can inflate to
//! gigabytes, and an allocation failure aborts a process instead of unwinding.
//! So the server never parses a PDF itself. It runs `portal extract-text` (this
//! same program) with the file on standard input, under an address-space limit
//! (RLIMIT_AS), a processor-time limit (RLIMIT_CPU), no core dumps, a wall-clock
//! deadline and a cap on what it may print. Whatever the file does, only that
//! child process dies.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use pdf_extract::{Document, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout};

/// Most characters of text kept for one document.
pub const MAX_CHARS: usize = 2_000_000;
/// Most bytes read from the child: `MAX_CHARS` of UTF-8, at most 4 bytes each.
const MAX_OUTPUT: u64 = MAX_CHARS as u64 * 4;
const MB: u64 = 1024 * 1024;

// How the child reports a file it could not read (the text goes to stdout).
const EXIT_UNREADABLE: u8 = 3;
const EXIT_PANIC: u8 = 4;
const EXIT_STREAM_TOO_LARGE: u8 = 5;

/// What one extraction may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Address space of the child, in MiB.
    pub memory_mb: u64,
    /// Wall-clock and processor time, in seconds.
    pub seconds: u64,
}

impl Limits {
    /// A compressed stream may inflate to a quarter of the memory limit: the
    /// parser holds it, its parsed form and the text at once.
    fn max_stream_mb(self) -> u64 {
        (self.memory_mb / 4).max(1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The file could not be read within the limits (a fact about the file; the
    /// reason never quotes its content).
    #[error("{0}")]
    Document(String),
    /// The extractor could not be run at all (not the file's fault).
    #[error("the text extractor could not be run: {0}")]
    Extractor(std::io::Error),
}

/// This running program, even when its file was replaced since it started (an
/// upgrade): the child then runs the same version as its parent.
pub fn this_program() -> std::io::Result<PathBuf> {
    let running = Path::new("/proc/self/exe");
    if running.exists() {
        Ok(running.to_path_buf())
    } else {
        std::env::current_exe()
    }
}

/// The text of `pdf`, extracted by `program extract-text` within `limits`.
pub async fn pdf_text(program: &Path, pdf: Vec<u8>, limits: Limits) -> Result<String, Failure> {
    let mut child = command(program, limits)
        .spawn()
        .map_err(Failure::Extractor)?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Failure::Extractor(std::io::Error::other("no pipes")));
    };
    // Written from its own task: a child that never reads cannot block us.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&pdf).await;
    });
    let deadline = Duration::from_secs(limits.seconds);
    let result = tokio::time::timeout(deadline, collect(&mut child, stdout)).await;
    writer.abort();
    match result {
        Ok(Ok((_, out))) if out.len() as u64 > MAX_OUTPUT => Err(Failure::Document(format!(
            "printed more than {MAX_OUTPUT} bytes of text"
        ))),
        Ok(Ok((status, out))) if status.success() => Ok(text(&out)),
        Ok(Ok((status, _))) => Err(judge(status, limits)),
        Ok(Err(e)) => {
            let _ = child.kill().await;
            Err(Failure::Extractor(e))
        }
        Err(_) => {
            let _ = child.kill().await;
            Err(Failure::Document(format!(
                "took longer than {} seconds",
                limits.seconds
            )))
        }
    }
}

/// Reads at most one byte past `MAX_OUTPUT`, then waits for the child to end
/// (past the cap the pipe is closed, so a child that keeps writing stops).
async fn collect(child: &mut Child, stdout: ChildStdout) -> std::io::Result<(ExitStatus, Vec<u8>)> {
    let mut out = Vec::new();
    stdout.take(MAX_OUTPUT + 1).read_to_end(&mut out).await?;
    let status = child.wait().await?;
    Ok((status, out))
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .chars()
        .take(MAX_CHARS)
        .collect()
}

/// Why the child found no text. Only what the file can cause counts against the
/// file; any other ending (a usage error from a program that is not this
/// portal's, a signal from outside) is the extractor's.
fn judge(status: ExitStatus, limits: Limits) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    let reason = match (status.code(), status.signal()) {
        (Some(code), _) if code == i32::from(EXIT_UNREADABLE) => "not a PDF it can read".into(),
        (Some(code), _) if code == i32::from(EXIT_PANIC) => "the PDF parser failed on it".into(),
        (Some(code), _) if code == i32::from(EXIT_STREAM_TOO_LARGE) => format!(
            "a compressed stream inflates to more than {} MB",
            limits.max_stream_mb()
        ),
        (_, Some(libc::SIGXCPU | libc::SIGKILL)) => format!(
            "used more than {} seconds of processor time (or was killed)",
            limits.seconds
        ),
        (_, Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS)) => format!(
            "needed more than {} MB of memory (or crashed)",
            limits.memory_mb
        ),
        _ => {
            return Failure::Extractor(std::io::Error::other(format!(
                "it stopped ({status}); is it this portal's program?"
            )));
        }
    };
    Failure::Document(reason)
}

// The limits must be set between fork and exec, which only `pre_exec` (unsafe) offers.
#[allow(unsafe_code)]
fn command(program: &Path, limits: Limits) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("extract-text")
        .arg("--max-stream-mb")
        .arg(limits.max_stream_mb().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Parser messages could quote the file: they go nowhere.
        .stderr(Stdio::null())
        // It needs no environment, and the server's may hold secrets
        // (PORTAL_MAIL__SMTP_PASSWORD).
        .env_clear()
        .kill_on_drop(true);
    let memory = limits.memory_mb.saturating_mul(MB);
    let seconds = limits.seconds;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called. It calls getrlimit and
    // setrlimit (both async-signal-safe) on stack values, and neither allocates
    // nor takes a lock.
    unsafe {
        cmd.pre_exec(move || {
            limit(libc::RLIMIT_AS, memory, memory)?;
            // Past the soft limit SIGXCPU, a second later SIGKILL: a backstop
            // to the deadline for a child whose parent is gone.
            limit(libc::RLIMIT_CPU, seconds, seconds.saturating_add(1))?;
            limit(libc::RLIMIT_CORE, 0, 0)
        });
    }
    cmd
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Lowers a resource limit of the calling process (never above its current
/// hard limit, which an unprivileged process cannot raise).
#[allow(unsafe_code)]
fn limit(resource: Resource, soft: u64, hard: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls get a pointer to a valid `rlimit` on this stack.
    unsafe {
        if libc::getrlimit(resource, &mut current) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let wanted = libc::rlimit {
            rlim_cur: (soft as libc::rlim_t).min(current.rlim_max),
            rlim_max: (hard as libc::rlim_t).min(current.rlim_max),
        };
        if libc::setrlimit(resource, &wanted) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `portal extract-text`: a PDF on stdin, its text on stdout. Runs in the child
/// under the limits above; the exit code says why it found no text.
pub fn child_main(max_stream_mb: u64) -> ExitCode {
    let mut pdf = Vec::new();
    if std::io::stdin().lock().read_to_end(&mut pdf).is_err() {
        return ExitCode::from(EXIT_UNREADABLE);
    }
    // Parsers can panic on hostile files; the message could quote the file.
    std::panic::set_hook(Box::new(|_| {}));
    let text = match std::panic::catch_unwind(|| extract(&pdf, max_stream_mb.saturating_mul(MB))) {
        Ok(Ok(text)) => text,
        Ok(Err(code)) => return ExitCode::from(code),
        Err(_) => return ExitCode::from(EXIT_PANIC),
    };
    let end = text
        .char_indices()
        .nth(MAX_CHARS)
        .map_or(text.len(), |(i, _)| i);
    let mut out = std::io::stdout().lock();
    match out
        .write_all(&text.as_bytes()[..end])
        .and_then(|()| out.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn extract(pdf: &[u8], max_stream: u64) -> Result<String, u8> {
    let mut doc = Document::load_mem(pdf).map_err(|_| EXIT_UNREADABLE)?;
    if doc.is_encrypted() {
        doc.decrypt("").map_err(|_| EXIT_UNREADABLE)?;
    }
    if doc
        .objects
        .values()
        .filter_map(|o| o.as_stream().ok())
        .any(|s| inflates_beyond(s, max_stream))
    {
        return Err(EXIT_STREAM_TOO_LARGE);
    }
    let mut text = String::new();
    pdf_extract::output_doc(&doc, &mut pdf_extract::PlainTextOutput::new(&mut text))
        .map_err(|_| EXIT_UNREADABLE)?;
    Ok(text)
}

/// Whether a Flate stream the text extractor would inflate (anything but an
/// image) holds more than `max` bytes, counted without keeping them.
fn inflates_beyond(stream: &Stream, max: u64) -> bool {
    let flate = stream
        .filters()
        .is_ok_and(|f| f.first() == Some(&&b"FlateDecode"[..]));
    let image = stream
        .dict
        .get(b"Subtype")
        .and_then(|s| s.as_name())
        .is_ok_and(|s| s == b"Image");
    if !flate || image {
        return false;
    }
    let input = &stream.content[..];
    let zlib = inflated_len(flate2::read::ZlibDecoder::new(input), max);
    // Like the parser, fall back to raw deflate after the 2-byte zlib header.
    let raw = || {
        inflated_len(
            flate2::read::DeflateDecoder::new(input.get(2..).unwrap_or(&[])),
            max,
        )
    };
    zlib > max || (zlib == 0 && raw() > max)
}

/// How many bytes `reader` yields, up to just past `max`, before its end or an error.
fn inflated_len(mut reader: impl Read, max: u64) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    while total <= max {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    use super::*;

    const LIMITS: Limits = Limits {
        memory_mb: 256,
        seconds: 1,
    };

    /// Runs a stand-in extractor, a shell script (it ignores its arguments), on
    /// `input`; returns what came of it and how long it took.
    async fn run_script(body: &str, input: &[u8]) -> (Result<String, Failure>, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extractor");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        loop {
            let started = Instant::now();
            match pdf_text(&path, input.to_vec(), LIMITS).await {
                // A child forked elsewhere in the test process can hold the
                // script's write handle for a moment ("text file busy").
                Err(Failure::Extractor(e)) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                result => return (result, started.elapsed()),
            }
        }
    }

    fn failure(result: Result<String, Failure>) -> String {
        match result {
            Err(Failure::Document(reason)) => reason,
            other => panic!("expected a document failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_child_runs_under_the_limits() {
        let script = "cat >/dev/null; ulimit -v; ulimit -t; ulimit -c";
        let (result, _) = run_script(script, b"%PDF").await;
        assert_eq!(
            result.unwrap(),
            "262144\n1\n0\n",
            "address space (KiB), CPU seconds, core size"
        );
    }

    #[tokio::test]
    async fn a_child_that_never_reads_or_ends_is_killed_at_the_deadline() {
        // Far more than a pipe holds: writing it must not block the caller.
        let (result, took) = run_script("exec sleep 60", &vec![b'x'; 8 * 1024 * 1024]).await;
        assert_eq!(failure(result), "took longer than 1 seconds");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn endless_output_is_cut_off() {
        let (result, took) = run_script("exec yes 'the same line again and again'", b"").await;
        assert_eq!(failure(result), "printed more than 8000000 bytes of text");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn a_crash_is_reported_without_content() {
        let script = "cat >/dev/null; echo 'SSN 123-45-6789' >&2; kill -ABRT $$";
        let (result, _) = run_script(script, b"SSN 123-45-6789").await;
        assert_eq!(
            failure(result),
            "needed more than 256 MB of memory (or crashed)"
        );
    }

    #[tokio::test]
    async fn a_program_that_is_not_the_extractor_is_not_the_documents_fault() {
        let script = "echo 'unrecognized subcommand' >&2; exit 2";
        let (result, _) = run_script(script, b"").await;
        assert!(matches!(result, Err(Failure::Extractor(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_missing_extractor_is_not_the_documents_fault() {
        let result = pdf_text(Path::new("/nonexistent/portal"), Vec::new(), LIMITS).await;
        assert!(matches!(result, Err(Failure::Extractor(_))), "{result:?}");
    }
}

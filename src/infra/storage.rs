//! The encrypted content store under `<data_dir>/documents`.
//!
//! Every file gets its own random key, kept only wrapped (encrypted) by the data
//! key in `keys/data.key`. Contents are encrypted with a chunked STREAM
//! construction: 64 KiB chunks, each sealed with ChaCha20-Poly1305 under the nonce
//! `prefix(7) ‖ chunk number(4, big-endian) ‖ last-chunk flag(1)`. A chunk cannot
//! be altered, moved or dropped, and the file cannot be cut short, without the
//! read failing; and any chunk decrypts on its own, so ranges are cheap.
//!
//! Files are written under `.incoming/` and renamed into place only when complete
//! (after fsync), so a reader never sees half a file. Names are server-generated.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::Rng;

use crate::infra::fsutil::sync_dir;

/// Plaintext bytes per chunk. Resumable uploads commit in multiples of this.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 8] = b"PORTALv1";
const HEADER: usize = MAGIC.len() + 7;

#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
    incoming: PathBuf,
    data_key: Key,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Io(#[from] io::Error),
    #[error("the stored file failed its integrity check (damaged or tampered with)")]
    Integrity,
    #[error("the file key could not be wrapped or unwrapped")]
    Key,
}

/// Where a partly written file stands: enough to resume it after a restart.
#[derive(Debug, Clone)]
pub struct Progress {
    pub blob: String,
    pub wrapped_key: Vec<u8>,
    pub nonce_prefix: Vec<u8>,
    /// Whole chunks written so far.
    pub chunks: u32,
}

impl Progress {
    /// Plaintext bytes safely written.
    pub fn committed(&self) -> u64 {
        u64::from(self.chunks) * CHUNK as u64
    }
}

impl Store {
    pub fn open(data_dir: &Path, keys_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("documents");
        let incoming = dir.join(".incoming");
        fs::create_dir_all(&incoming)?;
        let key_path = keys_dir.join("data.key");
        let key = crate::infra::fsutil::load_or_create_key(&key_path)?;
        Ok(Store {
            dir,
            incoming,
            data_key: key.into(),
        })
    }

    fn path(&self, blob: &str) -> io::Result<PathBuf> {
        if blob.len() < 16
            || !blob
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad blob name"));
        }
        Ok(self.dir.join(&blob[..2]).join(blob))
    }

    fn incoming_path(&self, blob: &str) -> PathBuf {
        self.incoming.join(blob)
    }

    fn wrap(&self, file_key: &[u8; 32], blob: &str) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; 12] = rand::rng().random();
        let cipher = ChaCha20Poly1305::new(&self.data_key);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: file_key,
                    aad: blob.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Key)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], blob: &str) -> Result<ChaCha20Poly1305, StoreError> {
        if wrapped.len() != 12 + 32 + TAG {
            return Err(StoreError::Key);
        }
        let cipher = ChaCha20Poly1305::new(&self.data_key);
        let key = cipher
            .decrypt(
                Nonce::from_slice(&wrapped[..12]),
                Payload {
                    msg: &wrapped[12..],
                    aad: blob.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Key)?;
        Ok(ChaCha20Poly1305::new(Key::from_slice(&key)))
    }

    /// Starts a new file. `expected_len` (when known, as for uploads) lets every
    /// whole chunk be written as soon as it is complete.
    pub fn create(&self, expected_len: Option<u64>) -> Result<BlobWriter, StoreError> {
        let blob = crate::infra::crypto::random_token();
        let file_key: [u8; 32] = rand::rng().random();
        let prefix: [u8; 7] = rand::rng().random();
        let progress = Progress {
            wrapped_key: self.wrap(&file_key, &blob)?,
            blob,
            nonce_prefix: prefix.to_vec(),
            chunks: 0,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.incoming_path(&progress.blob))?;
        file.write_all(MAGIC)?;
        file.write_all(&prefix)?;
        // The header must survive a power cut, or a resumed upload could never be read.
        file.sync_all()?;
        sync_dir(&self.incoming)?;
        Ok(BlobWriter {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&file_key)),
            store: self.clone(),
            file,
            progress,
            expected_len,
            pending: Vec::with_capacity(CHUNK),
        })
    }

    /// Reopens a file being uploaded, dropping anything after its last whole chunk.
    pub fn resume(&self, progress: Progress, expected_len: u64) -> Result<BlobWriter, StoreError> {
        let cipher = self.unwrap(&progress.wrapped_key, &progress.blob)?;
        let path = self.incoming_path(&progress.blob);
        let file = OpenOptions::new().write(true).open(&path)?;
        let end = HEADER as u64 + u64::from(progress.chunks) * (CHUNK + TAG) as u64;
        file.set_len(end)?;
        let mut writer = BlobWriter {
            cipher,
            store: self.clone(),
            file,
            progress,
            expected_len: Some(expected_len),
            pending: Vec::with_capacity(CHUNK),
        };
        writer.file.seek(SeekFrom::Start(end))?;
        Ok(writer)
    }

    /// Removes an unfinished file.
    pub fn discard(&self, blob: &str) {
        let _ = fs::remove_file(self.incoming_path(blob));
    }

    /// Removes a stored file (retention, deletion).
    pub fn remove(&self, blob: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(blob)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Opens a stored file for reading.
    pub fn open_blob(&self, blob: &str, wrapped_key: &[u8]) -> Result<BlobReader, StoreError> {
        let cipher = self.unwrap(wrapped_key, blob)?;
        let mut file = File::open(self.path(blob)?)?;
        let file_len = file.metadata()?.len();
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header)
            .map_err(|_| StoreError::Integrity)?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(StoreError::Integrity);
        }
        let body = file_len
            .checked_sub(HEADER as u64)
            .ok_or(StoreError::Integrity)?;
        let chunks = body.div_ceil((CHUNK + TAG) as u64).max(1);
        // Only an empty file has an empty last chunk; a last chunk of a tag or less
        // means the file was cut inside it.
        let last = body - (chunks - 1) * (CHUNK + TAG) as u64;
        if last < TAG as u64 || (last == TAG as u64 && chunks > 1) {
            return Err(StoreError::Integrity);
        }
        let len = body
            .checked_sub(chunks * TAG as u64)
            .ok_or(StoreError::Integrity)?;
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&header[MAGIC.len()..]);
        Ok(BlobReader {
            cipher,
            file,
            prefix,
            chunks,
            len,
        })
    }

    /// Whether a finished file with this name is in the store.
    pub fn is_stored(&self, blob: &str) -> bool {
        self.path(blob).is_ok_and(|p| p.is_file())
    }

    /// Deletes finished files that no document owns (a crash between storing a
    /// file and recording it, or a removal that failed), if older than `older_than`.
    pub fn sweep_stored(
        &self,
        keep: &dyn Fn(&str) -> bool,
        older_than: std::time::Duration,
    ) -> usize {
        let Ok(dirs) = fs::read_dir(&self.dir) else {
            return 0;
        };
        dirs.flatten()
            .filter(|d| !d.file_name().to_string_lossy().starts_with('.') && d.path().is_dir())
            .map(|d| sweep_dir(&d.path(), keep, older_than))
            .sum()
    }

    /// Deletes unfinished files not touched for `older_than` (abandoned uploads).
    pub fn sweep_incoming(
        &self,
        keep: &dyn Fn(&str) -> bool,
        older_than: std::time::Duration,
    ) -> usize {
        sweep_dir(&self.incoming, keep, older_than)
    }
}

/// Removes the files in `dir` that `keep` does not claim and that nobody has
/// touched for `older_than`; returns how many went.
fn sweep_dir(dir: &Path, keep: &dyn Fn(&str) -> bool, older_than: std::time::Duration) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if old && !keep(&name) && fs::remove_file(entry.path()).is_ok() {
            tracing::warn!(file = %name, dir = %dir.display(), "removed a file that nothing refers to");
            removed += 1;
        }
    }
    removed
}

fn nonce(prefix: &[u8], index: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    *Nonce::from_slice(&n)
}

/// Writes one file. Dropping it unfinished leaves the partial file for `resume`
/// (uploads) — call [`Store::discard`] to remove it.
pub struct BlobWriter {
    cipher: ChaCha20Poly1305,
    store: Store,
    file: File,
    progress: Progress,
    expected_len: Option<u64>,
    pending: Vec<u8>,
}

impl BlobWriter {
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Plaintext bytes accepted so far (written or waiting to complete a chunk).
    pub fn accepted(&self) -> u64 {
        self.progress.committed() + self.pending.len() as u64
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                // A full chunk is the last one only if nothing follows it.
                let more =
                    !data.is_empty() || self.expected_len.is_some_and(|len| self.accepted() < len);
                if more {
                    self.seal_chunk(false)?;
                } else if data.is_empty() && self.expected_len.is_none() {
                    // Unknown length: keep it until we learn whether more comes.
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn seal_chunk(&mut self, last: bool) -> Result<(), StoreError> {
        let n = nonce(&self.progress.nonce_prefix, self.progress.chunks, last);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&n, b"", &mut self.pending)
            .map_err(|_| StoreError::Integrity)?;
        self.file.write_all(&self.pending)?;
        self.file.write_all(&tag)?;
        self.pending.clear();
        self.progress.chunks += 1;
        Ok(())
    }

    /// Makes the whole chunks written so far durable (a resumable upload's checkpoint).
    pub fn checkpoint(&mut self) -> Result<&Progress, StoreError> {
        self.file.sync_data()?;
        Ok(&self.progress)
    }

    /// Seals the last chunk and moves the file into place. Returns its blob name,
    /// wrapped key and plaintext length.
    pub fn finish(mut self) -> Result<Sealed, StoreError> {
        let len = self.accepted();
        if self.expected_len.is_some_and(|expected| expected != len) {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "length mismatch",
            )));
        }
        self.seal_chunk(true)?;
        self.file.sync_all()?;
        let target = self.store.path(&self.progress.blob)?;
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
        if !dir.exists() {
            fs::create_dir_all(&dir)?;
            sync_dir(&self.store.dir)?;
        }
        fs::rename(self.store.incoming_path(&self.progress.blob), &target)?;
        sync_dir(&dir)?;
        sync_dir(&self.store.incoming)?;
        Ok(Sealed {
            blob: self.progress.blob.clone(),
            wrapped_key: self.progress.wrapped_key.clone(),
            len,
        })
    }

    /// Abandons the file and removes what was written.
    pub fn abort(self) {
        self.store.discard(&self.progress.blob);
    }
}

pub struct Sealed {
    pub blob: String,
    pub wrapped_key: Vec<u8>,
    pub len: u64,
}

/// Reads and authenticates a stored file, chunk by chunk.
pub struct BlobReader {
    cipher: ChaCha20Poly1305,
    file: File,
    prefix: [u8; 7],
    chunks: u64,
    len: u64,
}

impl BlobReader {
    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decrypts chunk `index` into `out` (cleared first).
    pub fn read_chunk(&mut self, index: u64, out: &mut Vec<u8>) -> Result<(), StoreError> {
        if index >= self.chunks {
            return Err(StoreError::Integrity);
        }
        let start = HEADER as u64 + index * (CHUNK + TAG) as u64;
        let last = index + 1 == self.chunks;
        let size = if last {
            (self.len - index * CHUNK as u64) as usize + TAG
        } else {
            CHUNK + TAG
        };
        out.clear();
        out.resize(size, 0);
        self.file.seek(SeekFrom::Start(start))?;
        self.file
            .read_exact(out)
            .map_err(|_| StoreError::Integrity)?;
        let tag_at = size - TAG;
        let tag = chacha20poly1305::Tag::clone_from_slice(&out[tag_at..]);
        out.truncate(tag_at);
        let index = u32::try_from(index).map_err(|_| StoreError::Integrity)?;
        self.cipher
            .decrypt_in_place_detached(&nonce(&self.prefix, index, last), b"", out, &tag)
            .map_err(|_| StoreError::Integrity)
    }

    /// Calls `sink` with the plaintext of bytes `start..end`, in order.
    pub fn read_range(
        &mut self,
        start: u64,
        end: u64,
        sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(CHUNK + TAG);
        let mut pos = start;
        while pos < end.min(self.len) {
            let index = pos / CHUNK as u64;
            self.read_chunk(index, &mut buf)?;
            let from = (pos - index * CHUNK as u64) as usize;
            let to = ((end - index * CHUNK as u64).min(buf.len() as u64)) as usize;
            sink(&buf[from..to])?;
            pos = index * CHUNK as u64 + to as u64;
        }
        if self.len == 0 {
            // Still authenticate the empty file's single chunk.
            self.read_chunk(0, &mut buf)?;
        }
        Ok(())
    }

    /// The whole plaintext (for small files: text extraction, previews).
    pub fn read_all(&mut self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(self.len as usize);
        self.read_range(0, self.len, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &dir.path().join("keys")).unwrap();
        (dir, store)
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn put(store: &Store, data: &[u8], known: bool) -> Sealed {
        let mut w = store.create(known.then_some(data.len() as u64)).unwrap();
        for piece in data.chunks(10_000) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_every_size_and_range() {
        let (_d, store) = store();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            for known in [true, false] {
                let data = sample(len);
                let sealed = put(&store, &data, known);
                assert_eq!(sealed.len, len as u64);
                let mut r = store.open_blob(&sealed.blob, &sealed.wrapped_key).unwrap();
                assert_eq!(r.len(), len as u64);
                assert_eq!(r.read_all().unwrap(), data, "len {len} known {known}");
                if len > 10 {
                    let (a, b) = (len as u64 / 3, len as u64 - 5);
                    let mut part = Vec::new();
                    r.read_range(a, b, &mut |x| {
                        part.extend_from_slice(x);
                        Ok(())
                    })
                    .unwrap();
                    assert_eq!(part, &data[a as usize..b as usize]);
                }
            }
        }
    }

    #[test]
    fn plaintext_is_not_on_disk_and_tampering_is_caught() {
        let (dir, store) = store();
        let data = b"Form 1040 for Jane Doe, SSN 123-45-6789. ".repeat(5000);
        let sealed = put(&store, &data, true);
        let path = store.path(&sealed.blob).unwrap();
        let raw = fs::read(&path).unwrap();
        assert!(
            !raw.windows(8).any(|w| w == b"Form 104"),
            "no plaintext on disk"
        );
        let mut bad = raw.clone();
        bad[HEADER + 100] ^= 1;
        fs::write(&path, &bad).unwrap();
        let mut r = store.open_blob(&sealed.blob, &sealed.wrapped_key).unwrap();
        assert!(matches!(r.read_all(), Err(StoreError::Integrity)));
        // Cutting off the last chunk is caught too, wherever the cut falls.
        fs::write(&path, &raw[..HEADER + CHUNK + TAG]).unwrap();
        let mut r = store.open_blob(&sealed.blob, &sealed.wrapped_key).unwrap();
        assert!(matches!(r.read_all(), Err(StoreError::Integrity)));
        let last_chunk = (raw.len() - HEADER) % (CHUNK + TAG);
        let before_last = raw.len() - last_chunk;
        for kept in [1, TAG - 1, TAG, TAG + 1, last_chunk - 1] {
            fs::write(&path, &raw[..before_last + kept]).unwrap();
            let outcome = store
                .open_blob(&sealed.blob, &sealed.wrapped_key)
                .and_then(|mut r| r.read_all());
            assert!(
                matches!(outcome, Err(StoreError::Integrity)),
                "cut keeping {kept} bytes of the last chunk"
            );
        }
        drop(dir);
    }

    #[test]
    fn an_upload_resumes_from_its_last_whole_chunk() {
        let (_d, store) = store();
        let data = sample(5 * CHUNK + 123);
        let mut w = store.create(Some(data.len() as u64)).unwrap();
        w.write(&data[..2 * CHUNK + 500]).unwrap();
        let progress = w.checkpoint().unwrap().clone();
        drop(w); // the connection dropped
        assert_eq!(progress.committed(), 2 * CHUNK as u64);
        let mut w = store.resume(progress.clone(), data.len() as u64).unwrap();
        w.write(&data[progress.committed() as usize..]).unwrap();
        let sealed = w.finish().unwrap();
        let mut r = store.open_blob(&sealed.blob, &sealed.wrapped_key).unwrap();
        assert_eq!(r.read_all().unwrap(), data);
        assert_eq!(
            fs::read_dir(&store.incoming).unwrap().count(),
            0,
            "nothing left incoming"
        );
    }

    #[test]
    fn aborted_files_leave_nothing() {
        let (_d, store) = store();
        let mut w = store.create(None).unwrap();
        w.write(&sample(3 * CHUNK)).unwrap();
        w.abort();
        assert_eq!(fs::read_dir(&store.incoming).unwrap().count(), 0);
    }
}

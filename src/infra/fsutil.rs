//! Durable file writes (temp file, fsync, rename, fsync the directory), and
//! keeping everything the portal writes readable by its own user only.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` (owner-only) so that readers see either the old file
/// or the whole new one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_owner_only(path, data)
}

/// Makes every file and directory this process creates from now on owner-only
/// (umask 077): the database with its WAL and SHM files, search segments,
/// outbox mail holding live access codes, blobs. Called once at start.
pub fn private_by_default() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates `dir` if needed and makes it owner-only (0700), also when an older
/// version or an admin created it readable by others: what is inside cannot then
/// be reached by other local users, whatever the files' own modes.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// What the portal keeps in its data directory. Only these are closed by
/// [`close_modes`] at start, never other files, should the data directory have
/// been set to a directory shared with something else.
pub const DATA_ENTRIES: &[&str] = &[
    "portal.db",
    "portal.db-wal",
    "portal.db-shm",
    "portal.db-journal",
    "keys",
    "documents",
    "search",
    "outbox",
    "plugin-cache",
];

/// Removes group and other permissions from the entries of `dir` whose names
/// `ours` accepts, and from everything below those that are directories, so that
/// a copy restored with open modes is closed again. Symbolic links are not
/// followed. Best effort: what cannot be changed (owned by another user) is
/// logged and left, still behind the owner-only `dir`.
pub fn close_modes(dir: &Path, ours: impl Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(&ours) {
            close_tree(&entry.path());
        }
    }
}

fn close_tree(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let was_open = open_to_others(&meta);
    #[cfg(unix)]
    if was_open {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & !0o077;
        if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot make this private to the portal's user");
        }
    }
    // A directory the portal made (owner-only) holds what it made: only an open
    // one (restored or loosened by hand) is walked, so a start does not visit
    // every stored document.
    if meta.is_dir() && was_open {
        close_modes(path, |_| true);
    }
}

fn open_to_others(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o077 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

fn write_owner_only(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::infra::crypto::random_id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` (owner-only) with `data` unless it already exists; returns false
/// if another process created it first. Never replaces an existing file.
pub fn write_new_private(path: &Path, data: &[u8]) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".new.{}.tmp", crate::infra::crypto::random_id()));
    write_owner_only(&tmp, data)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads a 32-byte key file, creating it with random bytes only if it does not exist.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    for _ in 0..2 {
        match fs::read(path) {
            Ok(bytes) => {
                return bytes
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::Rng::random(&mut rand::rng());
                if write_new_private(path, &key)? {
                    return Ok(key);
                }
            }
            Err(e) => anyhow::bail!("cannot read the key {}: {e}", path.display()),
        }
    }
    anyhow::bail!("cannot create the key {}", path.display())
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn closes_what_the_portal_keeps_and_nothing_else() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = |p: &std::path::Path, m| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let (db, docs, blob, other) = (
            dir.path().join("portal.db"),
            dir.path().join("documents"),
            dir.path().join("documents/ab"),
            dir.path().join("someone-elses.txt"),
        );
        std::fs::create_dir(&docs).unwrap();
        for f in [&db, &blob, &other] {
            std::fs::write(f, b"x").unwrap();
            open(f, 0o644);
        }
        open(&docs, 0o755);
        super::close_modes(dir.path(), |n| super::DATA_ENTRIES.contains(&n));
        assert_eq!(
            (mode(&db), mode(&docs), mode(&blob), mode(&other)),
            (0o600, 0o700, 0o600, 0o644)
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        super::write_atomic(&path, b"one").unwrap();
        super::write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

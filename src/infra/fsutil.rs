//! Durable file writes (temp file, fsync, rename, fsync the directory), and
//! keeping everything the portal writes readable by its own user only.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` (owner-only) so that readers see either the old file
/// or the whole new one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_with_mode(path, data, 0o600)
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
/// be reached by other local users. Everything inside loses its group and other
/// bits too, so that a copy restored with open modes is not left open should the
/// directory itself be opened up again later.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        close_tree(dir);
    }
    Ok(())
}

/// Removes group and other permissions from everything below `dir` (symbolic
/// links are not followed). Best effort: a file the portal cannot change (owned by
/// another user) is reported and left, still behind the owner-only `dir`.
#[cfg(unix)]
fn close_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            continue;
        }
        if mode & 0o077 != 0
            && let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7700))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot make this private to the portal's user");
        }
        if meta.is_dir() {
            close_tree(&path);
        }
    }
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
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
            options.mode(mode);
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
    write_with_mode(&tmp, data, 0o600)?;
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

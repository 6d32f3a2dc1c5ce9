//! Consecutive-failure limits for PINs and staff passwords, kept per email whether
//! or not an account exists (so lockouts reveal nothing). A handful of failures
//! brings a one-minute lockout that doubles with each further handful, up to an
//! hour; after 100 in a row the PIN stays locked until it is reset by email.

use rusqlite::Connection;

use super::repo;
use super::{AccountError, AccountResult};
use crate::infra::db::now;

pub const HARD_CAP: i64 = 100;

pub fn key(kind: &str, email_key: &str) -> String {
    format!("{kind}:{email_key}")
}

/// Refuses the attempt if the key is locked out.
pub fn check(conn: &Connection, key: &str) -> AccountResult<()> {
    check_capped(conn, key, HARD_CAP)
}

/// Like [`check`], with `cap` failures in a row locking the key until it is cleared.
pub fn check_capped(conn: &Connection, key: &str, cap: i64) -> AccountResult<()> {
    let (failures, locked_until) = repo::throttle(conn, key)?;
    if failures >= cap {
        return Err(AccountError::LockedUntilReset);
    }
    let t = now();
    if locked_until > t {
        return Err(AccountError::Locked(((locked_until - t) + 59) / 60));
    }
    Ok(())
}

/// Starts an attempt: refuses it while the key is locked out, else counts it as a
/// failure up front (call [`clear`] when it succeeds). Run inside the write
/// transaction so that parallel attempts cannot all slip under the limit.
pub fn begin(conn: &Connection, key: &str, lockout_after: u32) -> AccountResult<()> {
    begin_capped(conn, key, lockout_after, HARD_CAP).map(|_| ())
}

/// Like [`begin`] with the lock of [`check_capped`]; returns the failures counted
/// so far, this attempt included.
pub fn begin_capped(
    conn: &Connection,
    key: &str,
    lockout_after: u32,
    cap: i64,
) -> AccountResult<i64> {
    check_capped(conn, key, cap)?;
    fail(conn, key, lockout_after)?;
    Ok(repo::throttle(conn, key)?.0)
}

/// Counts a failure and sets the lockout it earns.
pub fn fail(conn: &Connection, key: &str, lockout_after: u32) -> rusqlite::Result<()> {
    let (failures, _) = repo::throttle(conn, key)?;
    let failures = failures + 1;
    repo::set_throttle(
        conn,
        key,
        failures,
        now() + lockout_secs(failures, i64::from(lockout_after)),
    )
}

pub fn clear(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    repo::clear_throttle(conn, key)
}

/// Clears every key that starts with `prefix` (all of a staff member's addresses).
pub fn clear_prefix(conn: &Connection, prefix: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM auth_throttle WHERE substr(key, 1, length(?1)) = ?1",
        [prefix],
    )?;
    Ok(())
}

fn lockout_secs(failures: i64, after: i64) -> i64 {
    if failures < after || failures % after != 0 {
        return 0;
    }
    let doublings = (failures / after - 1).min(6) as u32;
    (60i64 << doublings).min(3600)
}

#[cfg(test)]
mod tests {
    use super::lockout_secs;

    #[test]
    fn lockouts_start_short_and_grow() {
        assert_eq!(lockout_secs(4, 5), 0);
        assert_eq!(lockout_secs(5, 5), 60);
        assert_eq!(lockout_secs(6, 5), 0);
        assert_eq!(lockout_secs(10, 5), 120);
        assert_eq!(lockout_secs(15, 5), 240);
        assert_eq!(lockout_secs(95, 5), 3600);
    }
}

//! Consecutive-failure limits for PINs and staff passwords, kept per email whether
//! or not an account exists (so lockouts reveal nothing). A handful of failures
//! brings a one-minute lockout that doubles with each further handful, up to an
//! hour; after 100 in a row the PIN stays locked until it is reset by email.

use rusqlite::Connection;

use super::repo;
use super::{AccountError, AccountResult};
use crate::infra::audit::{self, Actor};
use crate::infra::db::now;
use crate::infra::web::Visitor;
use crate::state::AppState;

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

/// A secret (a PIN, a staff password) as typed, against the lockout of `key`.
pub struct SecretAttempt<'a> {
    pub key: String,
    pub typed: &'a str,
    /// The address the secret was typed for and where from, for the audit log.
    pub address: &'a str,
    pub visitor: &'a Visitor,
    /// The audit event and detail of a wrong secret.
    pub failed: (&'static str, &'static str),
}

/// Checks a typed secret under the lockout of its key. The attempt is counted
/// ([`begin`]) in the transaction in which `holder` reads who the secret belongs
/// to, before the slow hash comparison, so parallel guesses cannot slip under the
/// limit. `hash_of` picks the holder's stored hash (none still costs a
/// comparison, so an unknown address takes as long). A right secret clears the key
/// and runs `then` in the same transaction; a wrong one is audited as done by
/// `actor_of` the holder. Returns the holder and whether the secret was right.
pub async fn check_secret<T, H, P, A, N>(
    state: &AppState,
    attempt: SecretAttempt<'_>,
    holder: H,
    hash_of: P,
    actor_of: A,
    then: N,
) -> AccountResult<(T, bool)>
where
    T: Send + 'static,
    H: FnOnce(&Connection) -> AccountResult<T> + Send + 'static,
    P: FnOnce(&T) -> Option<String>,
    A: FnOnce(&T) -> Actor,
    N: FnOnce(&Connection) -> AccountResult<()> + Send + 'static,
{
    let (attempt_key, after) = (
        attempt.key.clone(),
        state.config.accounts.lockout_after.get(),
    );
    let found = state
        .db
        .write(move |tx| {
            begin(tx, &attempt_key, after)?;
            holder(tx)
        })
        .await?;
    let ok = state
        .verify_secret(attempt.typed.to_string(), hash_of(&found))
        .await?;
    let (key, actor, (event, detail)) = (attempt.key, actor_of(&found), attempt.failed);
    let (address, ip) = (attempt.address.to_string(), attempt.visitor.ip.clone());
    state
        .db
        .write(move |tx| {
            if ok {
                clear(tx, &key)?;
                return then(tx);
            }
            audit::record(tx, actor, event, &address, detail, &ip)?;
            Ok(())
        })
        .await?;
    Ok((found, ok))
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

//! Signed-in sessions (clients and staff) and trusted devices. Tokens are random;
//! only their SHA-256 is stored. Sessions end after a period of inactivity and at
//! an absolute limit; a trusted device skips the PIN step for a long while.

use rusqlite::Connection;

use super::repo::{self, Client, NewSession};
use crate::error::AppResult;
use crate::ids::{ClientId, StaffId};
use crate::infra::audit::{self, Actor};
use crate::infra::crypto::{random_token, token_hash};
use crate::infra::db::{DbError, now};
use crate::infra::web::Visitor;
use crate::state::AppState;

/// Who a session belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Client(ClientId),
    Staff(StaffId),
}

/// Creates a session inside the caller's transaction and returns its token.
pub fn open(
    conn: &Connection,
    state: &AppState,
    subject: Subject,
    visitor: &Visitor,
) -> rusqlite::Result<String> {
    let token = random_token();
    let (client_id, staff_id) = match subject {
        Subject::Client(id) => (Some(id), None),
        Subject::Staff(id) => (None, Some(id)),
    };
    let max_secs = i64::from(state.config.accounts.session_max_hours.get()) * 3600;
    repo::insert_session(
        conn,
        NewSession {
            token_hash: &token_hash(&token),
            client_id,
            staff_id,
            ip: &visitor.ip,
            user_agent: &visitor.user_agent,
            expires_at: now() + max_secs,
        },
    )?;
    Ok(token)
}

/// The live session behind `token`, refreshing its activity time. An idle or
/// expired session is deleted and `None` returned.
pub async fn resolve(state: &AppState, token: Option<&str>) -> AppResult<Option<(Subject, i64)>> {
    let Some(token) = token else { return Ok(None) };
    let hash = token_hash(token);
    let idle = i64::from(state.config.accounts.session_idle_minutes.get()) * 60;
    let lookup = hash.clone();
    let row = state
        .db
        .read(move |conn| repo::session(conn, &lookup).map_err(DbError::from))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let t = now();
    let alive = row.expires_at >= t && row.last_seen_at + idle >= t;
    let needs_touch = alive && t - row.last_seen_at >= 30;
    if !alive || needs_touch {
        state
            .db
            .write(move |tx| {
                if alive {
                    repo::touch_session(tx, &hash)
                } else {
                    repo::delete_session(tx, &hash)
                }
                .map_err(DbError::from)
            })
            .await?;
    }
    if !alive {
        return Ok(None);
    }
    let subject = match (row.client_id, row.staff_id) {
        (Some(id), _) => Subject::Client(id),
        (_, Some(id)) => Subject::Staff(id),
        _ => return Ok(None),
    };
    Ok(Some((subject, row.created_at)))
}

pub async fn client(state: &AppState, id: ClientId) -> AppResult<Option<Client>> {
    Ok(state
        .db
        .read(move |conn| repo::client_by_id(conn, id).map_err(DbError::from))
        .await?)
}

/// Signs out: the session ends and the audit log records who left.
pub async fn end(
    state: &AppState,
    token: &str,
    actor: Actor,
    subject: &str,
    visitor: &Visitor,
) -> AppResult<()> {
    let hash = token_hash(token);
    let (ip, subject) = (visitor.ip.clone(), subject.to_string());
    Ok(state
        .db
        .write(move |tx| {
            if repo::session(tx, &hash)?.is_some() {
                repo::delete_session(tx, &hash)?;
                audit::record(tx, actor, "signout", &subject, "", &ip)?;
            }
            Ok::<_, DbError>(())
        })
        .await?)
}

/// Trusts this browser for `client_id`: refreshes its device if the cookie already
/// belongs to that client, else creates a new device. Returns the cookie value.
pub fn trust_device(
    conn: &Connection,
    state: &AppState,
    client_id: ClientId,
    existing: Option<&str>,
    visitor: &Visitor,
) -> rusqlite::Result<String> {
    let days = i64::from(state.config.accounts.trusted_device_days.get());
    let expires_at = now() + days * 24 * 3600;
    if let Some(token) = existing
        && let Some(id) = repo::device_for(conn, &token_hash(token), client_id)?
    {
        repo::touch_device(conn, id, &visitor.ip, expires_at)?;
        return Ok(token.to_string());
    }
    let token = random_token();
    repo::insert_device(
        conn,
        &token_hash(&token),
        client_id,
        &device_label(&visitor.user_agent),
        &visitor.ip,
        expires_at,
    )?;
    Ok(token)
}

/// Whether this browser is a trusted device of `client_id`.
pub fn is_trusted(
    conn: &Connection,
    client_id: ClientId,
    device_token: Option<&str>,
) -> rusqlite::Result<bool> {
    match device_token {
        Some(t) => Ok(repo::device_for(conn, &token_hash(t), client_id)?.is_some()),
        None => Ok(false),
    }
}

/// "Firefox on Windows", from a User-Agent header, for the device list.
pub fn device_label(ua: &str) -> String {
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "A browser"
    };
    let os = if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS") {
        "macOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        "an unknown system"
    };
    format!("{browser} on {os}")
}

/// Job: removes expired sessions, trusted devices and sign-in flows.
pub async fn remove_expired(state: AppState) {
    let idle = i64::from(state.config.accounts.session_idle_minutes.get()) * 60;
    let result = state
        .db
        .write(move |tx| {
            repo::delete_expired_sessions(tx, idle)?;
            repo::delete_expired_devices(tx)?;
            repo::delete_expired_flows(tx)?;
            Ok::<_, DbError>(())
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "housekeeping failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_devices() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(super::device_label(ua), "Chrome on Windows");
        assert_eq!(
            super::device_label("curl/8"),
            "A browser on an unknown system"
        );
    }
}

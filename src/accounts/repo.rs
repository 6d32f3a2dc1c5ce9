//! SQL for clients, their addresses, sign-in flows, sessions, trusted devices and
//! failure throttles. Nothing but queries.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::email::Email;
use crate::ids::{ClientId, StaffId};
use crate::infra::crypto::random_id;
use crate::infra::db::{from_row, now};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Client {
    pub id: ClientId,
    pub public_id: String,
    pub name: String,
    pub account_name: Option<String>,
    #[serde(skip)]
    pub pin_hash: Option<String>,
    pub signed_up_at: Option<i64>,
    pub invited_at: Option<i64>,
    pub created_at: i64,
    /// The primary (sign-in) address.
    pub email: String,
}

const CLIENT_COLUMNS: &str =
    "c.id, c.public_id, c.name, c.account_name, c.pin_hash, c.signed_up_at, c.invited_at,
    c.created_at, e.email";

fn client_row(r: &Row) -> rusqlite::Result<Client> {
    Ok(from_row!(r => Client [
        id public_id name account_name pin_hash signed_up_at invited_at created_at email
    ]))
}

/// One client (with its primary address) matching `condition` on `?1`.
fn client_where(
    conn: &Connection,
    condition: &str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<Option<Client>> {
    conn.query_row(
        &format!(
            "SELECT {CLIENT_COLUMNS} FROM clients c JOIN client_emails e ON e.client_id = c.id AND e.is_primary = 1
             WHERE {condition}"
        ),
        [value],
        client_row,
    )
    .optional()
}

pub fn client_by_id(conn: &Connection, id: ClientId) -> rusqlite::Result<Option<Client>> {
    client_where(conn, "c.id = ?1", &id)
}

/// The client whose primary (sign-in) address this is. Merged addresses do not match.
pub fn client_by_primary_email(conn: &Connection, key: &str) -> rusqlite::Result<Option<Client>> {
    client_where(conn, "e.email_key = ?1", &key)
}

pub fn client_by_public_id(conn: &Connection, public_id: &str) -> rusqlite::Result<Option<Client>> {
    client_where(conn, "c.public_id = ?1", &public_id)
}

pub fn list_clients(conn: &Connection) -> rusqlite::Result<Vec<Client>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CLIENT_COLUMNS} FROM clients c JOIN client_emails e ON e.client_id = c.id AND e.is_primary = 1
         ORDER BY c.name COLLATE NOCASE"
    ))?;
    stmt.query_map([], client_row)?.collect()
}

/// Which portal an address belongs to, and whether it is that portal's primary address.
pub fn email_owner(conn: &Connection, key: &str) -> rusqlite::Result<Option<(ClientId, bool)>> {
    conn.query_row(
        "SELECT client_id, is_primary FROM client_emails WHERE email_key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? == 1)),
    )
    .optional()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientEmail {
    pub email: String,
    pub is_primary: bool,
    pub added_at: i64,
}

pub fn client_emails(conn: &Connection, client_id: ClientId) -> rusqlite::Result<Vec<ClientEmail>> {
    let mut stmt = conn.prepare(
        "SELECT email, is_primary, added_at FROM client_emails WHERE client_id = ?1 ORDER BY is_primary DESC, added_at",
    )?;
    stmt.query_map([client_id], |r| {
        Ok(ClientEmail {
            email: r.get(0)?,
            is_primary: r.get::<_, i64>(1)? == 1,
            added_at: r.get(2)?,
        })
    })?
    .collect()
}

pub fn insert_client(
    conn: &Connection,
    name: &str,
    email: &Email,
    invited: bool,
) -> rusqlite::Result<ClientId> {
    let t = now();
    conn.execute(
        "INSERT INTO clients (public_id, name, invited_at, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![random_id(), name, invited.then_some(t), t],
    )?;
    let id = ClientId(conn.last_insert_rowid());
    conn.execute(
        "INSERT INTO client_emails (email_key, email, client_id, is_primary, added_at) VALUES (?1, ?2, ?3, 1, ?4)",
        params![email.key, email.address, id, t],
    )?;
    Ok(id)
}

pub fn mark_invited(conn: &Connection, client_id: ClientId) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE clients SET invited_at = ?2 WHERE id = ?1",
        params![client_id, now()],
    )?;
    Ok(())
}

pub fn create_account(
    conn: &Connection,
    client_id: ClientId,
    account_name: &str,
    pin_hash: &str,
) -> rusqlite::Result<bool> {
    let t = now();
    let changed = conn.execute(
        "UPDATE clients SET account_name = ?2, pin_hash = ?3, signed_up_at = ?4 WHERE id = ?1 AND pin_hash IS NULL",
        params![client_id, account_name, pin_hash, t],
    )?;
    conn.execute(
        "UPDATE client_emails SET verified_at = ?2 WHERE client_id = ?1 AND is_primary = 1",
        params![client_id, t],
    )?;
    Ok(changed == 1)
}

pub fn set_pin(conn: &Connection, client_id: ClientId, pin_hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE clients SET pin_hash = ?2 WHERE id = ?1",
        params![client_id, pin_hash],
    )?;
    Ok(())
}

pub fn add_merged_email(
    conn: &Connection,
    client_id: ClientId,
    email: &Email,
) -> rusqlite::Result<()> {
    insert_verified_email(conn, client_id, email, false)
}

/// Adds an address the client has just proven, as its sign-in address or merged.
fn insert_verified_email(
    conn: &Connection,
    client_id: ClientId,
    email: &Email,
    primary: bool,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO client_emails (email_key, email, client_id, is_primary, verified_at, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![email.key, email.address, client_id, primary, now()],
    )?;
    Ok(())
}

/// Makes `email` the sign-in address of the client; the old primary address leaves the portal.
pub fn replace_primary_email(
    conn: &Connection,
    client_id: ClientId,
    email: &Email,
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM client_emails WHERE client_id = ?1 AND is_primary = 1",
        [client_id],
    )?;
    // A merged address of the same portal is promoted; otherwise the address is new.
    conn.execute(
        "DELETE FROM client_emails WHERE client_id = ?1 AND email_key = ?2",
        params![client_id, email.key],
    )?;
    insert_verified_email(conn, client_id, email, true)
}

// ---- sign-in flows ----

#[derive(Debug, Clone)]
pub struct Flow {
    pub token_hash: Vec<u8>,
    pub purpose: String,
    pub stage: String,
    pub email: String,
    pub name: Option<String>,
    pub client_id: Option<ClientId>,
    pub staff_id: Option<StaffId>,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires_at: Option<i64>,
    pub code_failures: i64,
    pub codes_sent: i64,
    pub last_code_at: Option<i64>,
    pub pending_secret: Option<String>,
    pub next_path: Option<String>,
}

/// A flow about to begin; its token hash and lifetime are given apart.
pub struct NewFlow {
    pub purpose: &'static str,
    pub stage: &'static str,
    pub email: String,
    pub name: Option<String>,
    pub client_id: Option<ClientId>,
    pub staff_id: Option<StaffId>,
    pub next_path: Option<String>,
}

pub fn insert_flow(
    conn: &Connection,
    token_hash: &[u8],
    f: &NewFlow,
    lifetime_secs: i64,
) -> rusqlite::Result<()> {
    // Expired flows are removed by the housekeeping job; `flow` ignores them.
    let t = now();
    conn.execute(
        "INSERT INTO auth_flows (token_hash, purpose, stage, email, name, client_id, staff_id, next_path, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![token_hash, f.purpose, f.stage, f.email, f.name, f.client_id, f.staff_id, f.next_path, t, t + lifetime_secs],
    )?;
    Ok(())
}

pub fn flow(conn: &Connection, token_hash: &[u8]) -> rusqlite::Result<Option<Flow>> {
    conn.query_row(
        "SELECT token_hash, purpose, stage, email, name, client_id, staff_id, code_hash, code_expires_at,
                code_failures, codes_sent, last_code_at, pending_secret, next_path
         FROM auth_flows WHERE token_hash = ?1 AND expires_at >= ?2",
        params![token_hash, now()],
        |r| {
            Ok(from_row!(r => Flow [
                token_hash purpose stage email name client_id staff_id code_hash
                code_expires_at code_failures codes_sent last_code_at pending_secret next_path
            ]))
        },
    )
    .optional()
}

pub fn set_flow_code(
    conn: &Connection,
    token_hash: &[u8],
    code_hash: Option<&[u8]>,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE auth_flows SET code_hash = ?2, code_expires_at = ?3, codes_sent = codes_sent + 1, last_code_at = ?4
         WHERE token_hash = ?1",
        params![token_hash, code_hash, expires_at, now()],
    )?;
    Ok(())
}

pub fn flow_code_failed(conn: &Connection, token_hash: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE auth_flows SET code_failures = code_failures + 1 WHERE token_hash = ?1",
        [token_hash],
    )?;
    Ok(())
}

/// Moves a flow to its next stage; a used code is cleared so it cannot be replayed.
pub fn advance_flow(conn: &Connection, token_hash: &[u8], stage: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE auth_flows SET stage = ?2, code_hash = NULL, code_expires_at = NULL WHERE token_hash = ?1",
        params![token_hash, stage],
    )?;
    Ok(())
}

pub fn set_flow_secret(conn: &Connection, token_hash: &[u8], secret: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE auth_flows SET pending_secret = ?2 WHERE token_hash = ?1",
        params![token_hash, secret],
    )?;
    Ok(())
}

pub fn delete_flow(conn: &Connection, token_hash: &[u8]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM auth_flows WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

// ---- failure throttles ----

pub fn throttle(conn: &Connection, key: &str) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT failures, locked_until FROM auth_throttle WHERE key = ?1",
        [key],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map(|o| o.unwrap_or((0, 0)))
}

pub fn set_throttle(
    conn: &Connection,
    key: &str,
    failures: i64,
    locked_until: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO auth_throttle (key, failures, locked_until, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key) DO UPDATE SET failures = ?2, locked_until = ?3, updated_at = ?4",
        params![key, failures, locked_until, now()],
    )?;
    Ok(())
}

pub fn clear_throttle(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM auth_throttle WHERE key = ?1", [key])?;
    Ok(())
}

// ---- sessions ----

pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub client_id: Option<ClientId>,
    pub staff_id: Option<StaffId>,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub expires_at: i64,
}

pub fn insert_session(conn: &Connection, s: NewSession) -> rusqlite::Result<()> {
    let t = now();
    conn.execute(
        "INSERT INTO sessions (token_hash, client_id, staff_id, ip, user_agent, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![s.token_hash, s.client_id, s.staff_id, s.ip, s.user_agent, t, s.expires_at],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub client_id: Option<ClientId>,
    pub staff_id: Option<StaffId>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub fn session(conn: &Connection, token_hash: &[u8]) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        "SELECT client_id, staff_id, created_at, last_seen_at, expires_at FROM sessions WHERE token_hash = ?1",
        [token_hash],
        |r| Ok(SessionRow { client_id: r.get(0)?, staff_id: r.get(1)?, created_at: r.get(2)?, last_seen_at: r.get(3)?, expires_at: r.get(4)? }),
    )
    .optional()
}

pub fn touch_session(conn: &Connection, token_hash: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
        params![token_hash, now()],
    )?;
    Ok(())
}

pub fn delete_session(conn: &Connection, token_hash: &[u8]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

/// Ends every session of a client except `keep` (if given); returns how many ended.
pub fn delete_client_sessions(
    conn: &Connection,
    client_id: ClientId,
    keep: Option<&[u8]>,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE client_id = ?1 AND (?2 IS NULL OR token_hash <> ?2)",
        params![client_id, keep],
    )
}

pub fn delete_expired_sessions(conn: &Connection, idle_secs: i64) -> rusqlite::Result<usize> {
    let t = now();
    conn.execute(
        "DELETE FROM sessions WHERE expires_at < ?1 OR last_seen_at < ?2",
        params![t, t - idle_secs],
    )
}

pub fn delete_expired_devices(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM trusted_devices WHERE expires_at < ?1", [now()])
}

pub fn delete_expired_flows(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM auth_flows WHERE expires_at < ?1", [now()])
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub current: bool,
}

pub fn client_sessions(
    conn: &Connection,
    client_id: ClientId,
    current: &[u8],
) -> rusqlite::Result<Vec<SessionInfo>> {
    let mut stmt = conn.prepare(
        "SELECT ip, user_agent, created_at, last_seen_at, token_hash = ?2 FROM sessions
         WHERE client_id = ?1 ORDER BY last_seen_at DESC",
    )?;
    stmt.query_map(params![client_id, current], |r| {
        Ok(from_row!(r => SessionInfo [
            ip user_agent created_at last_seen_at current
        ]))
    })?
    .collect()
}

// ---- trusted devices ----

pub fn insert_device(
    conn: &Connection,
    token_hash: &[u8],
    client_id: ClientId,
    label: &str,
    ip: &str,
    expires_at: i64,
) -> rusqlite::Result<()> {
    let t = now();
    conn.execute(
        "INSERT INTO trusted_devices (public_id, token_hash, client_id, label, ip, created_at, last_used_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![random_id(), token_hash, client_id, label, ip, t, expires_at],
    )?;
    Ok(())
}

/// The id of the unexpired trusted device with this token, if it belongs to `client_id`.
pub fn device_for(
    conn: &Connection,
    token_hash: &[u8],
    client_id: ClientId,
) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM trusted_devices WHERE token_hash = ?1 AND client_id = ?2 AND expires_at >= ?3",
        params![token_hash, client_id, now()],
        |r| r.get(0),
    )
    .optional()
}

pub fn touch_device(conn: &Connection, id: i64, ip: &str, expires_at: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE trusted_devices SET last_used_at = ?2, ip = ?3, expires_at = ?4 WHERE id = ?1",
        params![id, now(), ip, expires_at],
    )?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Device {
    pub public_id: String,
    pub label: String,
    pub ip: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub current: bool,
}

pub fn client_devices(
    conn: &Connection,
    client_id: ClientId,
    current: Option<&[u8]>,
) -> rusqlite::Result<Vec<Device>> {
    let mut stmt = conn.prepare(
        "SELECT public_id, label, ip, created_at, last_used_at, token_hash = ?3 FROM trusted_devices
         WHERE client_id = ?1 AND expires_at >= ?2 ORDER BY last_used_at DESC",
    )?;
    stmt.query_map(params![client_id, now(), current], |r| {
        Ok(Device {
            public_id: r.get(0)?,
            label: r.get(1)?,
            ip: r.get(2)?,
            created_at: r.get(3)?,
            last_used_at: r.get(4)?,
            current: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
        })
    })?
    .collect()
}

pub fn delete_device(
    conn: &Connection,
    client_id: ClientId,
    public_id: &str,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM trusted_devices WHERE client_id = ?1 AND public_id = ?2",
        params![client_id, public_id],
    )? == 1)
}

pub fn delete_client_devices(conn: &Connection, client_id: ClientId) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM trusted_devices WHERE client_id = ?1",
        [client_id],
    )
}

//! SQL for staff members and portal requests.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ids::StaffId;
use crate::infra::crypto::random_id;
use crate::infra::db::{from_row, now};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Staff {
    pub id: StaffId,
    pub public_id: String,
    pub email: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<i64>,
    #[serde(skip)]
    pub totp_last_step: i64,
    pub disabled_at: Option<i64>,
}

const STAFF_COLUMNS: &str = "id, public_id, email, name, password_hash, totp_secret, totp_enabled_at, totp_last_step, disabled_at";

fn staff_row(r: &Row) -> rusqlite::Result<Staff> {
    Ok(from_row!(r => Staff [
        id public_id email name password_hash totp_secret totp_enabled_at totp_last_step
        disabled_at
    ]))
}

pub fn insert_staff(
    conn: &Connection,
    email_key: &str,
    email: &str,
    name: &str,
    password_hash: &str,
) -> rusqlite::Result<StaffId> {
    conn.execute(
        "INSERT INTO staff (public_id, email_key, email, name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![random_id(), email_key, email, name, password_hash, now()],
    )?;
    Ok(StaffId(conn.last_insert_rowid()))
}

pub fn staff_by_email(conn: &Connection, email_key: &str) -> rusqlite::Result<Option<Staff>> {
    conn.query_row(
        &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE email_key = ?1"),
        [email_key],
        staff_row,
    )
    .optional()
}

pub fn staff_by_id(conn: &Connection, id: StaffId) -> rusqlite::Result<Option<Staff>> {
    conn.query_row(
        &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = ?1"),
        [id],
        staff_row,
    )
    .optional()
}

pub fn list_staff(conn: &Connection) -> rusqlite::Result<Vec<Staff>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {STAFF_COLUMNS} FROM staff ORDER BY name COLLATE NOCASE"
    ))?;
    stmt.query_map([], staff_row)?.collect()
}

pub fn enable_totp(
    conn: &Connection,
    id: StaffId,
    secret: &str,
    step: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE staff SET totp_secret = ?2, totp_enabled_at = ?3, totp_last_step = ?4 WHERE id = ?1",
        params![id, secret, now(), step],
    )?;
    Ok(())
}

pub fn set_totp_step(conn: &Connection, id: StaffId, step: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE staff SET totp_last_step = ?2 WHERE id = ?1",
        params![id, step],
    )?;
    Ok(())
}

pub fn reset_totp(conn: &Connection, id: StaffId) -> rusqlite::Result<()> {
    conn.execute("UPDATE staff SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = 0 WHERE id = ?1", [id])?;
    conn.execute("DELETE FROM sessions WHERE staff_id = ?1", [id])?;
    Ok(())
}

// ---- portal requests ----

#[derive(Debug, Clone, serde::Serialize)]
pub struct PortalRequest {
    pub id: i64,
    pub public_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub message: String,
    pub created_at: i64,
}

pub fn insert_request(
    conn: &Connection,
    name: &str,
    email: &str,
    phone: &str,
    message: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO portal_requests (public_id, name, email, phone, message, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![random_id(), name, email, phone, message, now()],
    )?;
    Ok(())
}

pub fn open_requests(conn: &Connection) -> rusqlite::Result<Vec<PortalRequest>> {
    let mut stmt = conn.prepare(
        "SELECT id, public_id, name, email, phone, message, created_at FROM portal_requests
         WHERE handled_at IS NULL ORDER BY created_at",
    )?;
    stmt.query_map([], |r| {
        Ok(from_row!(r => PortalRequest [
            id public_id name email phone message created_at
        ]))
    })?
    .collect()
}

pub fn open_request(conn: &Connection, public_id: &str) -> rusqlite::Result<Option<PortalRequest>> {
    Ok(open_requests(conn)?
        .into_iter()
        .find(|r| r.public_id == public_id))
}

pub fn close_request(conn: &Connection, id: i64, outcome: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE portal_requests SET handled_at = ?2, outcome = ?3 WHERE id = ?1",
        params![id, now(), outcome],
    )?;
    Ok(())
}

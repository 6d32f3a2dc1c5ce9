//! The audit log: append-only entries, each chained to the previous one by a
//! SHA-256 hash so that an edited or deleted entry is detectable.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::infra::crypto::sha256_hex;
use crate::infra::db::{from_row, now};

/// Who did something: a client, a staff member, the system, or an anonymous visitor.
#[derive(Debug, Clone)]
pub enum Actor {
    Client(String),
    Staff(String),
    Visitor,
    System,
}

impl Actor {
    fn label(&self) -> String {
        match self {
            Actor::Client(id) => format!("client:{id}"),
            Actor::Staff(id) => format!("staff:{id}"),
            Actor::Visitor => "visitor".into(),
            Actor::System => "system".into(),
        }
    }
}

#[derive(Debug, Serialize, Clone)]
pub struct Record {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub subject: String,
    pub detail: String,
    pub ip: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: the previous hash, its position and its fields as canonical JSON.
fn entry_hash(prev: &str, seq: i64, at: i64, fields: [&str; 5]) -> String {
    let [actor, event, subject, detail, ip] = fields;
    let canonical =
        serde_json::json!([prev, seq, at, actor, event, subject, detail, ip]).to_string();
    sha256_hex(canonical.as_bytes())
}

/// Appends an entry inside the caller's transaction: who (`actor`) did what
/// (`event`, a fixed snake_case name) to what (`subject`: an email, a public id),
/// with an optional `detail` and the client's IP address (empty when the entry
/// does not come from a request). The one way to write to the audit log.
pub fn record(
    conn: &Connection,
    actor: Actor,
    event: &str,
    subject: &str,
    detail: &str,
    ip: &str,
) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, String::from("0").repeat(64)),
    };
    let at = now();
    let actor = actor.label();
    let hash = entry_hash(&prev, seq, at, [&actor, event, subject, detail, ip]);
    conn.execute(
        "INSERT INTO audit_log (seq, at, actor, event, subject, detail, ip, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![seq, at, actor, event, subject, detail, ip, prev, hash],
    )?;
    Ok(())
}

pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Record>> {
    let mut stmt =
        conn.prepare("SELECT seq, at, actor, event, subject, detail, ip, prev_hash, hash FROM audit_log ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(from_row!(r => Record [
            seq at actor event subject detail ip prev_hash hash
        ]))
    })?;
    rows.collect()
}

/// Recomputes the chain; returns the number of entries, or the first broken sequence number.
pub fn verify(records: &[Record]) -> Result<usize, String> {
    let mut prev = String::from("0").repeat(64);
    for (index, r) in records.iter().enumerate() {
        let expected_seq = index as i64 + 1;
        if r.seq != expected_seq {
            return Err(format!("entry {expected_seq} is missing"));
        }
        if r.prev_hash != prev {
            return Err(format!(
                "entry {} does not follow entry {}",
                r.seq,
                r.seq - 1
            ));
        }
        let hash = entry_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            [&r.actor, &r.event, &r.subject, &r.detail, &r.ip],
        );
        if hash != r.hash {
            return Err(format!("entry {} was altered", r.seq));
        }
        prev = r.hash.clone();
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_accounts.sql"))
            .unwrap();
        for event in ["signin", "signout", "pin_changed"] {
            record(&conn, Actor::Visitor, event, "a@b.c", "", "127.0.0.1").unwrap();
        }
        let mut records = all(&conn).unwrap();
        assert_eq!(verify(&records), Ok(3));
        records[1].event = "nothing".into();
        assert_eq!(verify(&records), Err("entry 2 was altered".into()));
        records.remove(1);
        assert!(verify(&records).is_err());
        assert!(
            conn.execute("DELETE FROM audit_log", []).is_err(),
            "deletes are refused"
        );
    }
}

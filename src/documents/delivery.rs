//! The one way document bytes leave the portal. Downloads and the preview's
//! content, for clients and staff, whole or in ranges, all go through
//! [`deliver`], which writes the audit entry before the first byte is sent, so
//! a new route cannot serve a document without it.
//!
//! A resumed download or a PDF viewer asks for many ranges of one file. Each
//! request for the whole file is recorded; requests for a range are recorded
//! once per session, document and kind of access every [`RANGE_AUDIT_WINDOW`].

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Request, Response};

use super::repo::Document;
use crate::error::AppResult;
use crate::infra::audit::{self, Actor};
use crate::infra::crypto::sha256_hex;
use crate::infra::db::{DbError, now};
use crate::state::AppState;

/// Range requests of one session for one document are audited at most this often.
pub const RANGE_AUDIT_WINDOW: i64 = 10 * 60;

/// Who is reading a document, and how.
pub struct Access<'a> {
    pub actor: Actor,
    /// The reader's session token (never stored: only a hash derived from it).
    pub session: &'a str,
    pub ip: String,
    pub kind: Kind,
}

/// How the bytes are delivered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An attachment (`application/octet-stream`), audited as `document_downloaded`.
    Download,
    /// Shown inline by the preview (safe types only), audited as `document_previewed`.
    Preview,
}

impl Kind {
    fn event(self) -> &'static str {
        match self {
            Kind::Download => "document_downloaded",
            Kind::Preview => "document_previewed",
        }
    }
}

/// A `Range` header that cannot be satisfied (answered with 416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=a-b` range against `len`; `Err` when unsatisfiable.
pub fn parse_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: send the whole file
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| Unsatisfiable)?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse().map_err(|_| Unsatisfiable)?, len),
        (a, b) => (
            a.parse().map_err(|_| Unsatisfiable)?,
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .saturating_add(1)
                .min(len),
        ),
    };
    if start >= end || start >= len {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

/// `attachment; filename="ascii"; filename*=UTF-8''encoded`.
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The part of the file a request asks for, after `If-Range`.
fn requested_range(req: &Request, doc: &Document) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let header_str = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    // A browser resuming a download sends the ETag back in If-Range: a range of
    // another version would be corrupt, so then the whole file is sent.
    let resumable = header_str(header::IF_RANGE).is_none_or(|v| v == etag(doc));
    let requested = if resumable {
        header_str(header::RANGE)
    } else {
        None
    };
    parse_range(requested, doc.size as u64)
}

/// A document's content never changes, so its id and size make a strong ETag.
fn etag(doc: &Document) -> String {
    format!("\"{}-{}\"", doc.public_id, doc.size)
}

/// Serves a document (whole, or the range asked for) after auditing the access.
/// `HEAD` gets the headers only and, serving no bytes, is not audited; neither is
/// a range that cannot be satisfied.
pub async fn deliver(
    req: &Request,
    state: &AppState,
    doc: &Document,
    access: Access<'_>,
) -> AppResult<Response> {
    let len = doc.size as u64;
    let range = match requested_range(req, doc) {
        Ok(r) => r,
        Err(Unsatisfiable) => {
            return Ok(Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .finish());
        }
    };
    let (start, end) = range.unwrap_or((0, len));
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        record(state, doc, &access, range).await?;
        Body::from_bytes_stream(super::content::stream_range(state, doc, start, end))
    };
    let mut resp = headers(doc, access.kind, end - start).body(body);
    if range.is_some() {
        resp.set_status(StatusCode::PARTIAL_CONTENT);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

fn headers(doc: &Document, kind: Kind, length: u64) -> poem::ResponseBuilder {
    let inline = kind == Kind::Preview;
    let content_type = if inline {
        doc.mime.as_str()
    } else {
        "application/octet-stream"
    };
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag(doc))
        .header(
            header::CONTENT_DISPOSITION,
            disposition(if inline { "inline" } else { "attachment" }, &doc.name),
        )
        .header(header::CACHE_CONTROL, "private, no-store");
    if inline {
        // Even a preview can never run script or load anything.
        builder.header(
            "content-security-policy",
            "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        )
    } else {
        builder
    }
}

/// Writes the audit entry for one access (and marks a client's first access),
/// unless it is a range request the same session made within the window.
async fn record(
    state: &AppState,
    doc: &Document,
    access: &Access<'_>,
    range: Option<(u64, u64)>,
) -> AppResult<()> {
    let (id, public, size) = (doc.id, doc.public_id.clone(), doc.size);
    let (actor, ip, event) = (access.actor.clone(), access.ip.clone(), access.kind.event());
    // Derived from the token, so this table cannot be used to find the session.
    let session = sha256_hex(format!("document-access\0{}", access.session).as_bytes());
    let detail = match range {
        Some((start, end)) => format!("bytes {start}-{} of {size}", end - 1),
        None => format!("whole file, {size} bytes"),
    };
    // Most range requests continue an access already audited: a read tells,
    // without taking the one writer.
    if range.is_some() {
        let key = session.clone();
        let seen = state
            .db
            .read(move |conn| {
                super::repo::recently_audited(conn, &key, id, event, now() - RANGE_AUDIT_WINDOW)
                    .map_err(DbError::from)
            })
            .await?;
        if seen {
            return Ok(());
        }
    }
    Ok(state
        .db
        .write(move |tx| {
            super::publish::note_access(tx, id, &actor)?;
            audit::record(tx, actor, event, &public, &detail, &ip)?;
            super::repo::mark_audited(tx, &session, id, event)?;
            Ok::<_, DbError>(())
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 10))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 100))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=x-"), 100), Err(Unsatisfiable));
    }

    #[test]
    fn dispositions_are_safe() {
        let d = disposition("attachment", "Jane \"quote\" résumé\r\n.pdf");
        assert!(
            d.starts_with("attachment; filename=\"Jane _quote_ r_sum___.pdf\""),
            "{d}"
        );
        assert!(
            d.contains("filename*=UTF-8''Jane%20%22quote%22%20r%C3%A9sum%C3%A9%0D%0A.pdf"),
            "{d}"
        );
    }
}

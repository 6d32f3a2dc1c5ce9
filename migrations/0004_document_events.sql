-- Document events kept between requests: when a session's range requests for a
-- document were last audited, client uploads waiting to be announced to staff in
-- one batched email, and upload starts counted for the per-client hourly limit.

-- One row per session, document and kind of access (download, preview) audited in
-- the last few minutes, so that the many range requests of one resumed download
-- or PDF viewer make one audit entry rather than hundreds. `session_ref` is a
-- hash derived from the session token, not the token's own hash.
CREATE TABLE document_access (
    session_ref  TEXT    NOT NULL,
    document_id  INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    event        TEXT    NOT NULL,
    audited_at   INTEGER NOT NULL,
    PRIMARY KEY (session_ref, document_id, event)
) STRICT;
CREATE INDEX document_access_time ON document_access(audited_at);

-- A finished client upload that staff have not been told about yet. Written in
-- the same transaction as the document, removed in the same transaction as the
-- email that announces it, so a restart loses no notification. A file the client
-- deletes before then is simply not announced.
CREATE TABLE upload_notices (
    id           INTEGER PRIMARY KEY,
    client_id    INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    document_id  INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX upload_notices_client ON upload_notices(client_id, created_at);
CREATE INDEX upload_notices_document ON upload_notices(document_id);

-- Uploads a client started in the last hour (documents.uploads_per_hour).
CREATE TABLE upload_starts (
    client_id   INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    started_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX upload_starts_client ON upload_starts(client_id, started_at);

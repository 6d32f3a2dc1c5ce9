-- D*: documents exchanged between the firm and its clients, uploads in progress,
-- and staff notifications. File contents live encrypted in the content store;
-- the original file name is metadata only.

CREATE TABLE documents (
    id               INTEGER PRIMARY KEY,
    public_id        TEXT    NOT NULL UNIQUE,
    client_id        INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    folder           TEXT    NOT NULL,            -- e.g. "2025 / Returns"
    name             TEXT    NOT NULL,            -- as shown; sanitised
    mime             TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    blob             TEXT    NOT NULL UNIQUE,     -- server-generated content name
    wrapped_key      BLOB    NOT NULL,
    origin           TEXT    NOT NULL CHECK (origin IN ('firm', 'client')),
    kind             TEXT    NOT NULL DEFAULT 'other' CHECK (kind IN ('return', 'other')),
    tax_year         INTEGER,
    message          TEXT,                        -- "Message from CPA"
    signature_status TEXT CHECK (signature_status IN ('awaiting', 'signed')),
    staff_id         INTEGER REFERENCES staff(id) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,            -- published (firm) or uploaded (client)
    viewed_at        INTEGER,                     -- first opened or downloaded by the client
    saved_at         INTEGER                      -- the firm saved a client upload to its files
) STRICT;
CREATE INDEX documents_client ON documents(client_id, created_at);

-- Resumable uploads in progress (tus-style). Whole 64 KiB chunks are durable.
CREATE TABLE uploads (
    id            INTEGER PRIMARY KEY,
    public_id     TEXT    NOT NULL UNIQUE,
    client_id     INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    folder        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    mime          TEXT    NOT NULL,
    length        INTEGER NOT NULL,
    blob          TEXT    NOT NULL UNIQUE,
    wrapped_key   BLOB    NOT NULL,
    nonce_prefix  BLOB    NOT NULL,
    chunks        INTEGER NOT NULL DEFAULT 0,
    -- Set when the last byte is in: the upload stays answerable for a day, so a
    -- client whose final reply was lost learns it finished instead of re-sending.
    document_id   TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX uploads_client ON uploads(client_id);

-- What staff see in the staff area's notification list (F5).
CREATE TABLE staff_notifications (
    id          INTEGER PRIMARY KEY,
    text        TEXT    NOT NULL,
    link        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    read_at     INTEGER
) STRICT;

-- Clients (the firm's client portals), their email addresses, staff, sign-in state,
-- the mail queue and the audit log. Timestamps are Unix seconds.

CREATE TABLE clients (
    id            INTEGER PRIMARY KEY,
    public_id     TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,            -- the firm's name for the client
    account_name  TEXT,                        -- the taxpayer's own name, given at sign-up
    pin_hash      TEXT,                        -- argon2id; NULL until the account is created
    signed_up_at  INTEGER,
    invited_at    INTEGER,
    created_at    INTEGER NOT NULL
) STRICT;

-- Every address belongs to at most one portal. The primary address signs in;
-- merged addresses only route documents to the portal.
CREATE TABLE client_emails (
    email_key     TEXT    PRIMARY KEY,         -- normalised and lower-cased, for comparison
    email         TEXT    NOT NULL,            -- normalised, as shown
    client_id     INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    is_primary    INTEGER NOT NULL CHECK (is_primary IN (0, 1)),
    verified_at   INTEGER,
    added_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX client_emails_one_primary ON client_emails(client_id) WHERE is_primary = 1;
CREATE INDEX client_emails_client ON client_emails(client_id);

CREATE TABLE staff (
    id              INTEGER PRIMARY KEY,
    public_id       TEXT    NOT NULL UNIQUE,
    email_key       TEXT    NOT NULL UNIQUE,
    email           TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    totp_secret     TEXT,                      -- base32; set at enrolment
    totp_enabled_at INTEGER,
    totp_last_step  INTEGER NOT NULL DEFAULT 0, -- a TOTP code is accepted once
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER
) STRICT;

CREATE TABLE trusted_devices (
    id            INTEGER PRIMARY KEY,
    public_id     TEXT    NOT NULL UNIQUE,
    token_hash    BLOB    NOT NULL UNIQUE,
    client_id     INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    label         TEXT    NOT NULL,
    ip            TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX trusted_devices_client ON trusted_devices(client_id);

CREATE TABLE sessions (
    token_hash    BLOB    PRIMARY KEY,
    client_id     INTEGER REFERENCES clients(id) ON DELETE CASCADE,
    staff_id      INTEGER REFERENCES staff(id) ON DELETE CASCADE,
    ip            TEXT    NOT NULL,
    user_agent    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    CHECK ((client_id IS NULL) <> (staff_id IS NULL))
) STRICT;
CREATE INDEX sessions_client ON sessions(client_id);
CREATE INDEX sessions_staff ON sessions(staff_id);

-- A multi-step sign-up, sign-in, PIN reset, email change or merge in progress.
-- The browser holds the token; access codes are bound to the flow they were sent for.
CREATE TABLE auth_flows (
    token_hash      BLOB    PRIMARY KEY,
    purpose         TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    name            TEXT,
    client_id       INTEGER REFERENCES clients(id) ON DELETE CASCADE,
    staff_id        INTEGER REFERENCES staff(id) ON DELETE CASCADE,
    code_hash       BLOB,
    code_expires_at INTEGER,
    code_failures   INTEGER NOT NULL DEFAULT 0,
    codes_sent      INTEGER NOT NULL DEFAULT 0,
    last_code_at    INTEGER,
    pending_secret  TEXT,                      -- e.g. the new PIN's hash until the code confirms it
    next_path       TEXT,                      -- a local page to return to after sign-in
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_flows_expiry ON auth_flows(expires_at);

-- Consecutive failures (wrong PIN, password or TOTP) per email, known or not.
CREATE TABLE auth_throttle (
    key           TEXT    PRIMARY KEY,
    failures      INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE portal_requests (
    id            INTEGER PRIMARY KEY,
    public_id     TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    phone         TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    handled_at    INTEGER,
    outcome       TEXT
) STRICT;

-- Outgoing mail. Bodies are cleared once sent (they may hold access codes).
CREATE TABLE mail_queue (
    id              INTEGER PRIMARY KEY,
    to_addr         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER,
    failed_at       INTEGER
) STRICT;
CREATE INDEX mail_queue_due ON mail_queue(next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- Append-only; each entry's hash covers the previous entry's hash.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    event         TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    ip            TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- T1–T3: tasks the firm assigns to a client, their answers and item reviews,
-- the staff timeline, the Exchange thread, the task kind's log lines, and the
-- documents a client sent against a task's question.

CREATE TABLE tasks (
    id                 INTEGER PRIMARY KEY,
    public_id          TEXT    NOT NULL UNIQUE,
    client_id          INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    type_id            TEXT    NOT NULL,            -- `KindInfo.id`, e.g. exchange, organizer
    kind_version       TEXT    NOT NULL,
    title              TEXT    NOT NULL,
    tax_year           INTEGER NOT NULL,
    due_date           TEXT,                        -- YYYY-MM-DD
    settings           TEXT    NOT NULL,            -- JSON list of `kinds::Answer`
    state              TEXT    NOT NULL DEFAULT 'open'
                       CHECK (state IN ('open', 'awaiting_review', 'changes_requested', 'completed', 'cancelled')),
    progress_done      INTEGER NOT NULL DEFAULT 0,
    progress_total     INTEGER NOT NULL DEFAULT 0,
    last_view          TEXT,                        -- JSON `kinds::View` of the last good render
    reopen_message     TEXT,
    summary            TEXT,
    created_by         INTEGER REFERENCES staff(id) ON DELETE SET NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    opened_at          INTEGER,                     -- first opened by the client
    submitted_at       INTEGER,
    completed_at       INTEGER
) STRICT;
CREATE INDEX tasks_client ON tasks(client_id, state);

-- One answer per question; hidden answers stay (never destroyed).
CREATE TABLE task_answers (
    task_id        INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    field_id       TEXT    NOT NULL,
    value          TEXT,                            -- JSON `kinds::Value`; NULL for a note alone
    review         TEXT    NOT NULL DEFAULT 'waiting' CHECK (review IN ('waiting', 'accepted', 'returned')),
    return_reason  TEXT,
    note           TEXT,                            -- the client's note to the preparer
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (task_id, field_id)
) STRICT;

-- The staff timeline of a task.
CREATE TABLE task_events (
    id       INTEGER PRIMARY KEY,
    task_id  INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,                      -- the audit log's actor label
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX task_events_task ON task_events(task_id, id);

-- The Exchange thread.
CREATE TABLE task_messages (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    author     TEXT    NOT NULL CHECK (author IN ('client', 'staff')),
    staff_id   INTEGER REFERENCES staff(id) ON DELETE SET NULL,
    body       TEXT    NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX task_messages_task ON task_messages(task_id, id);

-- Lines the task kind (plugin) logged while serving this task; the last few
-- hundred per task are kept.
CREATE TABLE task_log (
    id       INTEGER PRIMARY KEY,
    task_id  INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    call     TEXT    NOT NULL,                      -- render, submit, check_settings
    level    TEXT    NOT NULL,
    message  TEXT    NOT NULL
) STRICT;
CREATE INDEX task_log_task ON task_log(task_id, id);

-- Documents sent against a task: a question's upload (field_id) or an Exchange
-- message's attachment (message_id). The document itself lives in Documents.
CREATE TABLE task_files (
    document_id  INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    task_id      INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    field_id     TEXT,
    message_id   INTEGER REFERENCES task_messages(id) ON DELETE CASCADE
) STRICT;
CREATE INDEX task_files_task ON task_files(task_id, field_id);

-- Due-date reminders sent (or made needless by the assignment email), one row
-- per task and threshold of `tasks.reminder_days`.
CREATE TABLE task_reminders (
    task_id  INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    days     INTEGER NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (task_id, days)
) STRICT;

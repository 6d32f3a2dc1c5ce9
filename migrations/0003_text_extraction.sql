-- How reading a PDF's text for search went, per document (issue 6). The row is
-- set to 'pending' before the text is read and to 'done' or 'failed' after, so
-- a document whose extraction failed, or was under way when the process died,
-- is not tried again by the index repair at start or by `portal reindex`: it
-- stays downloadable and is found by its name, folder and message only.
CREATE TABLE text_extraction (
    document_id INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    reason      TEXT,                          -- why it failed; never document content
    attempts    INTEGER NOT NULL DEFAULT 0,    -- extractions started
    updated_at  INTEGER NOT NULL
) STRICT;

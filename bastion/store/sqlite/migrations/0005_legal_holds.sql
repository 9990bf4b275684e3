-- A legal hold keeps a session's recording from the retention sweep.
CREATE TABLE legal_holds (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id),
    held_by    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    held_at    INTEGER NOT NULL
);

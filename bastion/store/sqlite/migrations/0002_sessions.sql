-- Sessions on targets and their recordings.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    target      TEXT NOT NULL,
    login       TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    command     TEXT NOT NULL,
    request_id  BIGINT,            -- NULL for standing access
    source      TEXT NOT NULL,
    recording   TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    end_reason  TEXT NOT NULL,
    exit_status INTEGER NOT NULL
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_user ON sessions (username, started_at);

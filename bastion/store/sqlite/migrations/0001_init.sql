-- Requests, their approvals, issued certificates and the audit log.
--
-- Portable to PostgreSQL: BIGINT ids handed out from the sequences table (no
-- AUTOINCREMENT or SERIAL), times as BIGINT unix nanoseconds in UTC (NULL for
-- an unset time), list fields as JSON arrays in TEXT, no SQLite-only types.

-- Counters for ids that must never be reused: a row is bumped with
-- UPDATE ... SET value = value + 1 inside the transaction that uses the value.
CREATE TABLE sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('request', 0);
INSERT INTO sequences (name, value) VALUES ('certificate', 0);

CREATE TABLE requests (
    id                 BIGINT PRIMARY KEY,
    requester          TEXT NOT NULL,
    role               TEXT NOT NULL,
    targets            TEXT NOT NULL,   -- JSON array
    logins             TEXT NOT NULL,   -- JSON array
    reason             TEXT NOT NULL,
    duration_ns        BIGINT NOT NULL,
    source             TEXT NOT NULL,
    state              TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    pending_until      BIGINT,
    approvals_required INTEGER NOT NULL,
    approvers          TEXT NOT NULL,   -- JSON array of roles
    decided_at         BIGINT,
    decided_by         TEXT NOT NULL,
    decision_reason    TEXT NOT NULL,
    grant_start        BIGINT,
    grant_end          BIGINT,
    closed_at          BIGINT,
    closed_by          TEXT NOT NULL,
    close_reason       TEXT NOT NULL,
    -- Bumped by every change. Approve bumps it with a conditional UPDATE
    -- first, which takes the row's write lock before anything is read.
    revision           BIGINT NOT NULL
);
CREATE INDEX requests_created_at ON requests (created_at);
CREATE INDEX requests_requester_created_at ON requests (requester, created_at);
CREATE INDEX requests_state ON requests (state);

CREATE TABLE approvals (
    request_id  BIGINT NOT NULL REFERENCES requests (id),
    position    INTEGER NOT NULL,  -- 1, 2, ... in the order recorded
    approver    TEXT NOT NULL,
    comment     TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, position),
    UNIQUE (request_id, approver)
);

CREATE TABLE certificates (
    serial          BIGINT PRIMARY KEY,
    request_id      BIGINT REFERENCES requests (id),  -- NULL: not tied to a request
    username        TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    principals      TEXT NOT NULL,  -- JSON array
    targets         TEXT NOT NULL,  -- JSON array
    valid_after     BIGINT,
    valid_before    BIGINT,
    issued_at       BIGINT
);
CREATE INDEX certificates_request_id ON certificates (request_id);

-- The hash chain: seq is the event's position, so a second event sealed
-- after the same predecessor cannot be stored.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    target      TEXT NOT NULL,
    request_id  BIGINT NOT NULL,  -- 0: none. No foreign key: an event may name a
                                  -- request that was refused and never stored.
    source      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    details     TEXT,             -- JSON object, NULL when empty
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_request_id ON audit_events (request_id);
CREATE INDEX audit_events_actor ON audit_events (actor);
CREATE INDEX audit_events_subject ON audit_events (subject);

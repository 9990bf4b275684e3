-- Database secrets: what `token` hands out for PostgreSQL and MySQL
-- targets. Only verifiers are kept, never the secret: a SCRAM-SHA-256
-- verifier in PostgreSQL's format, and the double hashes MySQL's
-- mysql_native_password and caching_sha2_password check against.
CREATE TABLE db_secrets (
    id           BIGINT PRIMARY KEY,
    request_id   BIGINT NOT NULL REFERENCES requests (id),
    username     TEXT NOT NULL,
    scram        TEXT NOT NULL,
    mysql_native TEXT NOT NULL,  -- hex SHA1(SHA1(secret))
    mysql_sha2   TEXT NOT NULL,  -- hex SHA256(SHA256(secret))
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX db_secrets_user ON db_secrets (username, expires_at);
INSERT INTO sequences (name, value) VALUES ('db_secret', 0);

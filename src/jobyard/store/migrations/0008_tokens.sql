-- 0008: bearer tokens of the HTTP face, and what a UCloud create asked for.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,       -- public handle (list, revoke); not the secret
    name        TEXT NOT NULL,          -- the identity: owner of the jobs it creates
    role        TEXT NOT NULL,
    project     TEXT NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the secret; the secret is never kept
    created_at  TEXT NOT NULL,
    expires_at  TEXT,                   -- NULL = never
    revoked_at  TEXT
);

-- The UCloud JobSpecification of a job created on the HTTP face, as the client sent it
-- (application, product, parameters, ...); the job itself is the native record in jobs.
CREATE TABLE ucloud_specs (
    job_id        TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    specification TEXT NOT NULL         -- JSON
);

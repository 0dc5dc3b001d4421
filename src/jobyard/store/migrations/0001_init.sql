-- 0001: jobs and their status history.
CREATE TABLE jobs (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    owner              TEXT NOT NULL,
    name               TEXT NOT NULL DEFAULT '',
    command            TEXT NOT NULL,
    args               TEXT NOT NULL,          -- JSON array
    environment        TEXT NOT NULL,          -- JSON object
    secret_environment TEXT NOT NULL,          -- JSON object; never returned by any API
    max_cpu            INTEGER NOT NULL,
    cpu_cores          TEXT NOT NULL,
    max_memory         INTEGER NOT NULL,
    max_iobps          INTEGER NOT NULL,
    max_pids           INTEGER NOT NULL,
    status             TEXT NOT NULL,
    reason             TEXT,
    exit_code          INTEGER,
    created_at         TEXT NOT NULL,
    started_at         TEXT,
    ended_at           TEXT,
    runtime            TEXT NOT NULL,
    backend_id         TEXT NOT NULL DEFAULT '',
    message            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_status ON jobs(status);

CREATE TABLE job_updates (
    job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at        TEXT NOT NULL,
    status    TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX job_updates_job ON job_updates(job_id);

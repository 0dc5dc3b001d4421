-- 0003: workflows and the place of each of their jobs.
CREATE TABLE workflows (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    document    TEXT NOT NULL,          -- the YAML as submitted; re-parsed after a restart
    status      TEXT NOT NULL,          -- RUNNING, COMPLETED, FAILED, STOPPED
    created_at  TEXT NOT NULL,
    ended_at    TEXT
);

CREATE TABLE workflow_jobs (
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,       -- dependency order
    job_id      TEXT,                   -- set once the job was created
    status      TEXT NOT NULL,          -- PENDING until created; STOPPED if never started
    reason      TEXT,
    PRIMARY KEY (workflow_id, name)
);
CREATE INDEX workflow_jobs_job ON workflow_jobs(job_id);

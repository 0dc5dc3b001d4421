-- 0016: the UCloud provider face (jobyard.store.provider).
-- Jobs UCloud/Core created here: Core's id beside jobyard's, and how many of the job's
-- Core updates are already in the outbox (its history, folded to UCloud states).
CREATE TABLE provider_jobs (
    core_id     TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    posted      INTEGER NOT NULL DEFAULT 0,
    final       INTEGER NOT NULL DEFAULT 0      -- 1 once the terminal update is queued
);
CREATE INDEX provider_jobs_open ON provider_jobs(final) WHERE final = 0;

-- The durable outbox of jobs.control.update calls: appended in the same transaction that
-- advances provider_jobs.posted, deleted once Core acknowledged it; sent in seq order.
CREATE TABLE core_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    core_id     TEXT NOT NULL,
    body        TEXT NOT NULL,                  -- the JobUpdate JSON
    created_at  TEXT NOT NULL
);

-- Charges sent to Core (jobs.control.chargeCredits), journalled before they are sent, so
-- that after a crash the same unit is sent again under the same charge id (a duplicate).
CREATE TABLE core_charges (
    charge_id   TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    core_id     TEXT NOT NULL,
    unit        INTEGER NOT NULL,
    periods     INTEGER NOT NULL,
    outcome     TEXT,                           -- NULL until Core answered
    at          TEXT NOT NULL
);
CREATE INDEX core_charges_job ON core_charges(job_id, unit);

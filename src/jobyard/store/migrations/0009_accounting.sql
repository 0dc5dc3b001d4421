-- 0009: wallets, deposits and charges (jobyard.accounting.sqlite.SQLiteLedger).
CREATE TABLE wallets (
    owner    TEXT NOT NULL,
    project  TEXT NOT NULL DEFAULT '',     -- '' = the owner's personal wallet
    balance  INTEGER NOT NULL CHECK (balance >= 0),  -- credits
    spent    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, project)
);

CREATE TABLE deposits (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    owner    TEXT NOT NULL,
    project  TEXT NOT NULL,
    credits  INTEGER NOT NULL,
    at       TEXT NOT NULL
);

-- One row per charge; the charge id (job id + unit range) is unique, so a charge applied
-- again (a retry, a restart) is a duplicate and takes nothing. Kept when the job is deleted.
CREATE TABLE charges (
    charge_id   TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    owner       TEXT NOT NULL,
    project     TEXT NOT NULL,
    first_unit  INTEGER NOT NULL,
    last_unit   INTEGER NOT NULL,
    periods     INTEGER NOT NULL,
    credits     INTEGER NOT NULL,
    product     TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL
);
CREATE INDEX charges_job ON charges(job_id, last_unit);

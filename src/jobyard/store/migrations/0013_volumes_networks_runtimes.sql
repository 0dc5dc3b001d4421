-- 0013: Joblet's named resources: volumes, networks and runtimes (one namespace each).
CREATE TABLE volumes (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    project     TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL,          -- filesystem (ext4 image) or memory (tmpfs)
    size_bytes  INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE networks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    project     TEXT NOT NULL DEFAULT '',
    cidr        TEXT NOT NULL UNIQUE,
    bridge      TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE runtimes (
    name        TEXT PRIMARY KEY,
    language    TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    packages    TEXT NOT NULL DEFAULT '[]', -- JSON list
    test        TEXT NOT NULL DEFAULT '[]', -- JSON argv run by TestRuntime
    size_bytes  INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

-- 0002: network, time limits and schedules, labels, replicas, usage, suspension, workflows.
ALTER TABLE jobs ADD COLUMN network TEXT NOT NULL DEFAULT 'host';
ALTER TABLE jobs ADD COLUMN time_limit_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN scheduled_at TEXT;
ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN replicas INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN expires_at TEXT;
ALTER TABLE jobs ADD COLUMN usage TEXT;
ALTER TABLE jobs ADD COLUMN suspended_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN suspended_at TEXT;
ALTER TABLE jobs ADD COLUMN workflow_id TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_scheduled ON jobs(scheduled_at) WHERE scheduled_at IS NOT NULL;

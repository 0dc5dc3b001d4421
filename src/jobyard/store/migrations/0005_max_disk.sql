-- 0005: the MB a job may write to /work and its output together (0 = unlimited).
ALTER TABLE jobs ADD COLUMN max_disk INTEGER NOT NULL DEFAULT 0;

-- 0012: what a job attaches (Joblet's volumes, runtime and uploads). JSON lists of names.
ALTER TABLE jobs ADD COLUMN volumes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN runtime_env TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN uploads TEXT NOT NULL DEFAULT '[]';

-- 0017: who else sees a job (Job.shared_with: "user:NAME" / "project:NAME", a JSON list),
-- e.g. from UCloud/Core's ACL on the provider face. The partial index keeps scoped lists
-- fast: only the (few) shared jobs are looked into.
ALTER TABLE jobs ADD COLUMN shared_with TEXT NOT NULL DEFAULT '[]';
CREATE INDEX jobs_shared ON jobs(seq) WHERE shared_with != '[]';

-- 0004: projects (certificate O): a user sees its own jobs and workflows and its project's.
ALTER TABLE jobs ADD COLUMN project TEXT NOT NULL DEFAULT '';
ALTER TABLE workflows ADD COLUMN project TEXT NOT NULL DEFAULT '';
-- A user's lists filter on owner OR project.
CREATE INDEX jobs_owner ON jobs(owner);
CREATE INDEX jobs_project ON jobs(project) WHERE project != '';
CREATE INDEX workflows_owner ON workflows(owner);

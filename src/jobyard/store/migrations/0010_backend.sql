-- 0010: the job's backend ("local", "slurm") in a column of its own. The column held it
-- under the name "runtime", which on the Joblet wire is the runtime environment
-- (e.g. python-3.11-ml): one word, one meaning.
ALTER TABLE jobs RENAME COLUMN runtime TO backend;

-- 0007: secret environments are sealed (AES-256-GCM under the server key) while a job may
-- still need them, and erased when it ends. Values an earlier version left in plaintext are
-- erased here for ended jobs; those of unfinished jobs are sealed by the store as it opens
-- (that needs the key, which SQL does not have), after which it truncates the WAL.
UPDATE jobs
   SET secret_environment = (SELECT json_group_object(key, '') FROM json_each(secret_environment))
 WHERE status IN ('COMPLETED', 'FAILED', 'STOPPED') AND secret_environment != '{}';

-- A workflow whose document carries secret values never shows it and erases it at its end.
-- Documents before 0007 are taken to carry secrets when they mention secret_environment
-- (erring on the side of hiding); ended ones are erased now, the others sealed at open.
ALTER TABLE workflows ADD COLUMN holds_secrets INTEGER NOT NULL DEFAULT 0;
UPDATE workflows SET holds_secrets = 1 WHERE instr(document, 'secret_environment') > 0;
UPDATE workflows SET document = '' WHERE holds_secrets = 1 AND ended_at IS NOT NULL;

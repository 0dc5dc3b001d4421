-- 0006: workflow jobs keep their dependencies (views need no re-parse of the document), and
-- client request ids (gRPC metadata idempotency-key) so that a retried create is answered
-- with what the first one created.
ALTER TABLE workflow_jobs ADD COLUMN dependencies TEXT;   -- JSON array of names; NULL before 0006

CREATE TABLE request_keys (
    owner       TEXT NOT NULL,
    key         TEXT NOT NULL,          -- the client's idempotency-key
    fingerprint TEXT NOT NULL,          -- keyed hash of the operation and its request
    result_id   TEXT NOT NULL,          -- the job or workflow the first request created
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX request_keys_expiry ON request_keys(expires_at);

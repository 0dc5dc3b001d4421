-- 0014: the product a job runs on (UCloud ProductReference as JSON {id, category, provider});
-- NULL for a job without one (not charged).
ALTER TABLE jobs ADD COLUMN product TEXT;

-- A call whose usage row was spooled (the database was away when it was answered) was not charged
-- against quotas at answer time; replay charges it (usage_spool.replay). charge_replayed records that
-- replay did, so a record replayed twice (a crash before its acknowledgement, an SQS redelivery) or
-- a row that reached the database late on its own is charged exactly once.
ALTER TABLE {s}.usage ADD COLUMN IF NOT EXISTS charge_replayed boolean NOT NULL DEFAULT false;

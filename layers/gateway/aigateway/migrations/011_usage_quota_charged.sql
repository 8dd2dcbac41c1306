-- A usage row and its quota charge are now written by one statement (store/usage.py, `settle`),
-- live and on replay alike, so the flag says whether the row's charge was counted. Existing values
-- keep their meaning: under the earlier code a row whose copy still waits in the spool with a
-- subject was never charged live (the live charge followed only a row that was known to land), so
-- false stays "owed by its replay", and rows charged live never have such a copy.
ALTER TABLE {s}.usage RENAME COLUMN charge_replayed TO quota_charged;

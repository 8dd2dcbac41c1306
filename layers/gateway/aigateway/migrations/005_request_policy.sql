-- Per-configuration request policy (aigateway/request_policy.py): which paid features and caller
-- inputs a configuration's callers may use, e.g. {"systemMessages": false, "maxTokens": 2048,
-- "webSearch": {"enabled": true, "engines": [], "maxResults": 3}, "pdfEngines": ["pdf-text"],
-- "plugins": ["web", "file-parser"], "forwardUser": false}. NULL = the documented defaults.
-- JSON for the same reason as content_policy: validated by the API layer, read whole.
ALTER TABLE {s}.configs ADD COLUMN IF NOT EXISTS request_policy jsonb;

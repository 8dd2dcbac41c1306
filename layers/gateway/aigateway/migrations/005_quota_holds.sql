-- Quotas reserved at admission, and limit subjects no caller can shape (aigateway/limits.py).

-- Subjects become typed, fixed-size keys: 'user:' || sha256(sub), 'anon:' || sha256(...),
-- 'key:admin'. Existing user counters are rewritten to the new key of the same user (the
-- admin key's 'admin' becomes 'key:admin'); old anon counters ("sub:ip") become orphans that
-- the periodic cleanup drops. Minute windows are simply dropped: they are minutes old at most.
UPDATE {s}.quota_counters
   SET subject = CASE WHEN subject = 'admin' THEN 'key:admin'
                      ELSE 'user:' || encode(sha256(convert_to(subject, 'UTF8')), 'hex') END
 WHERE scope = 'user' AND subject !~ '^(user|anon):[0-9a-f]{64}$' AND subject <> 'key:admin';
DELETE FROM {s}.rate_counters WHERE scope = 'user';

ALTER TABLE {s}.quota_counters DROP CONSTRAINT IF EXISTS quota_counters_subject_size;
ALTER TABLE {s}.quota_counters ADD CONSTRAINT quota_counters_subject_size CHECK (length(subject) <= 80);
ALTER TABLE {s}.rate_counters DROP CONSTRAINT IF EXISTS rate_counters_subject_size;
ALTER TABLE {s}.rate_counters ADD CONSTRAINT rate_counters_subject_size CHECK (length(subject) <= 80);

-- One row per admitted call in flight under a quota: the most it may use (prompt estimate +
-- maxTokens, and their price). Admission counts settled totals plus live holds; settling or
-- failing deletes the hold. A hold whose process died stops counting at expires_at.
CREATE TABLE IF NOT EXISTS {s}.quota_holds (
    id          bigserial PRIMARY KEY,
    subject     text NOT NULL CHECK (length(subject) <= 80),
    tokens      bigint NOT NULL CHECK (tokens >= 0),
    spend_usd   numeric(20, 10) NOT NULL CHECK (spend_usd >= 0),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_holds_subject_idx ON {s}.quota_holds (subject);

-- The admission of one call, in one statement (SELECT * FROM admit_call(...)). A function rather
-- than one big CTE because a quota check must see the holds other calls committed while this one
-- waited: under the advisory locks below, each query here takes a fresh snapshot, so "settled +
-- held < quota" and the insert of this call's hold are one atomic step per user and per project.
-- Lock order is fixed (user, then project; then the rate rows), and a charge takes no advisory
-- lock, so admissions and charges never deadlock.
CREATE OR REPLACE FUNCTION {s}.admit_call(
    p_at timestamptz, p_subject text, p_u_rate integer, p_p_rate integer,
    p_u_day bigint, p_u_month bigint, p_u_spend numeric,
    p_p_day bigint, p_p_month bigint, p_p_spend numeric,
    p_hold_tokens bigint, p_hold_spend numeric, p_hold_ttl_s integer,
    p_actor text, p_ip text, p_details jsonb, p_audit boolean)
RETURNS TABLE (o_now timestamptz, o_window_start timestamptz, o_refused text, o_user_hits integer,
               o_project_hits integer, o_hold_id bigint, o_user_day bigint, o_user_month bigint,
               o_user_spend numeric, o_project_day bigint, o_project_month bigint, o_project_spend numeric,
               o_held boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_t timestamptz := COALESCE(p_at, now());
    v_win timestamptz := to_timestamp(floor(extract(epoch FROM v_t) / 60) * 60);
    v_day date := (v_t AT TIME ZONE 'UTC')::date;
    v_month date := date_trunc('month', v_t AT TIME ZONE 'UTC')::date;
    v_user_q boolean := p_u_day IS NOT NULL OR p_u_month IS NOT NULL OR p_u_spend IS NOT NULL;
    v_proj_q boolean := p_p_day IS NOT NULL OR p_p_month IS NOT NULL OR p_p_spend IS NOT NULL;
    v_u_day bigint := 0; v_u_month bigint := 0; v_u_spend numeric := 0;
    v_p_day bigint := 0; v_p_month bigint := 0; v_p_spend numeric := 0;
    v_held_tokens bigint := 0; v_held_spend numeric := 0; v_all_tokens bigint := 0; v_all_spend numeric := 0;
    v_refused text;
    v_held boolean := false;  -- refused only because calls in progress hold what is left
    v_uh integer;
    v_ph integer;
    v_hold bigint;
BEGIN
    IF v_user_q OR v_proj_q THEN
        -- User lock first, then the project's: the same order in every admission.
        PERFORM CASE WHEN v_user_q THEN pg_advisory_xact_lock(7130002, hashtext(p_subject)) END,
                CASE WHEN v_proj_q THEN pg_advisory_xact_lock(7130003, 0) END;
        -- Settled totals, then the live holds: the subject's alone when only user quotas
        -- apply, else all of them. One query, run after the locks, so it sees every hold
        -- committed before this admission got them.
        SELECT COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'user' AND c.period = 'day'), 0),
               COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'user' AND c.period = 'month'), 0),
               COALESCE(SUM(c.spend_usd) FILTER (WHERE c.scope = 'user' AND c.period = 'month'), 0),
               COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'project' AND c.period = 'day'), 0),
               COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'project' AND c.period = 'month'), 0),
               COALESCE(SUM(c.spend_usd) FILTER (WHERE c.scope = 'project' AND c.period = 'month'), 0),
               h.user_tokens, h.user_spend, h.all_tokens, h.all_spend
          INTO v_u_day, v_u_month, v_u_spend, v_p_day, v_p_month, v_p_spend,
               v_held_tokens, v_held_spend, v_all_tokens, v_all_spend
          FROM (SELECT COALESCE(SUM(tokens) FILTER (WHERE subject = p_subject), 0) AS user_tokens,
                       COALESCE(SUM(spend_usd) FILTER (WHERE subject = p_subject), 0) AS user_spend,
                       COALESCE(SUM(tokens), 0) AS all_tokens, COALESCE(SUM(spend_usd), 0) AS all_spend
                  FROM {s}.quota_holds
                 WHERE expires_at > v_t AND (v_proj_q OR subject = p_subject)) h
          LEFT JOIN {s}.quota_counters c
            ON ((c.scope = 'user' AND c.subject = p_subject) OR (c.scope = 'project' AND c.subject = ''))
           AND ((c.period = 'day' AND c.period_start = v_day) OR (c.period = 'month' AND c.period_start = v_month))
         GROUP BY h.user_tokens, h.user_spend, h.all_tokens, h.all_spend;
        v_u_day := v_u_day + v_held_tokens;
        v_u_month := v_u_month + v_held_tokens;
        v_u_spend := v_u_spend + v_held_spend;
        IF v_proj_q THEN
            v_p_day := v_p_day + v_all_tokens;
            v_p_month := v_p_month + v_all_tokens;
            v_p_spend := v_p_spend + v_all_spend;
        END IF;
        v_refused := CASE WHEN v_u_day >= p_u_day THEN 'user.tokensPerDay'
                          WHEN v_u_month >= p_u_month THEN 'user.tokensPerMonth'
                          WHEN v_u_spend >= p_u_spend THEN 'user.spendPerMonthUsd'
                          WHEN v_p_day >= p_p_day THEN 'project.tokensPerDay'
                          WHEN v_p_month >= p_p_month THEN 'project.tokensPerMonth'
                          WHEN v_p_spend >= p_p_spend THEN 'project.spendPerMonthUsd'
                     END;
    END IF;
    v_held := CASE v_refused
                  WHEN 'user.tokensPerDay' THEN v_u_day - v_held_tokens < p_u_day
                  WHEN 'user.tokensPerMonth' THEN v_u_month - v_held_tokens < p_u_month
                  WHEN 'user.spendPerMonthUsd' THEN v_u_spend - v_held_spend < p_u_spend
                  WHEN 'project.tokensPerDay' THEN v_p_day - v_all_tokens < p_p_day
                  WHEN 'project.tokensPerMonth' THEN v_p_month - v_all_tokens < p_p_month
                  WHEN 'project.spendPerMonthUsd' THEN v_p_spend - v_all_spend < p_p_spend
                  ELSE false
              END;
    IF v_refused IS NULL AND p_u_rate IS NOT NULL THEN
        INSERT INTO {s}.rate_counters AS r (scope, subject, window_start, hits)
        VALUES ('user', p_subject, v_win, 1)
        ON CONFLICT (scope, subject, window_start) DO UPDATE SET hits = r.hits + 1
        RETURNING r.hits INTO v_uh;
    END IF;
    IF v_refused IS NULL AND p_p_rate IS NOT NULL AND (v_uh IS NULL OR v_uh <= p_u_rate) THEN
        INSERT INTO {s}.rate_counters AS r (scope, subject, window_start, hits)
        VALUES ('project', '', v_win, 1)
        ON CONFLICT (scope, subject, window_start) DO UPDATE SET hits = r.hits + 1
        RETURNING r.hits INTO v_ph;
    END IF;
    v_refused := COALESCE(v_refused, CASE WHEN v_uh > p_u_rate THEN 'user.requestsPerMinute'
                                          WHEN v_ph > p_p_rate THEN 'project.requestsPerMinute' END);
    IF v_refused IS NULL AND (v_user_q OR v_proj_q) THEN
        INSERT INTO {s}.quota_holds (subject, tokens, spend_usd, expires_at)
        VALUES (p_subject, GREATEST(p_hold_tokens, 0), GREATEST(p_hold_spend, 0),
                v_t + make_interval(secs => p_hold_ttl_s))
        RETURNING id INTO v_hold;
    END IF;
    IF v_refused IS NOT NULL AND p_audit THEN
        INSERT INTO {s}.audit_logs (actor, action, details, ip_address)
        VALUES (p_actor, CASE WHEN v_refused LIKE '%.requestsPerMinute' THEN 'RATE_LIMITED' ELSE 'QUOTA_EXCEEDED' END,
                p_details || jsonb_build_object('limit', v_refused), p_ip);
    END IF;
    RETURN QUERY SELECT v_t, v_win, v_refused, v_uh, v_ph, v_hold,
                        v_u_day, v_u_month, v_u_spend, v_p_day, v_p_month, v_p_spend,
                        v_held;
END
$$;

-- The shared state of every node on this database (issue 15 "Limits across nodes"; R-X17, R-X9,
-- R-X16): src/storage/postgres/pg-shared-state.ts and pg-lease.ts. Applied by `poplar db migrate`
-- in one transaction.

-- SharedState.key: 32 random octets, the same for every node, drawn by the first node that starts
-- (crypto.randomBytes) and read by the others: the HMAC key of the failed-password fingerprints
-- (auth/throttle.ts) and of the login cache's MACs (kept per node).
CREATE TABLE shared_key (
  id  boolean PRIMARY KEY DEFAULT true CHECK (id),
  key bytea NOT NULL CHECK (length(key) = 32)
);

-- A holder is one poplar process (a node, or a worker of one). Its row is a lease it renews every
-- third of `postgres.lease_seconds` (one UPDATE per process, whatever its number of sessions);
-- what it holds counts only while expires_at is ahead, and a dead holder's row is removed (with
-- everything it held) by the next renewal of any other holder.
CREATE TABLE shared_holders (
  id         uuid PRIMARY KEY,
  node       text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX shared_holders_expires ON shared_holders (expires_at);

-- R-X9 `pop3.max_connections_per_user` for the cluster: one row per logged-in session.
CREATE TABLE shared_user_sessions (
  token     uuid PRIMARY KEY,
  holder    uuid NOT NULL REFERENCES shared_holders (id) ON DELETE CASCADE,
  user_name text NOT NULL
);
CREATE INDEX shared_user_sessions_user ON shared_user_sessions (user_name);
CREATE INDEX shared_user_sessions_holder ON shared_user_sessions (holder);

-- SharedState.claim: exclusive claims, each held by a live holder.
CREATE TABLE shared_claims (
  name   text PRIMARY KEY,
  holder uuid NOT NULL REFERENCES shared_holders (id) ON DELETE CASCADE
);
CREATE INDEX shared_claims_holder ON shared_claims (holder);

-- R-X9 failed-login counters, per address (kind 'a') and per user (kind 'u'). last_ms: the last
-- failure, ms since the epoch (the node's clock); rows older than the window are pruned. tried:
-- the last 8 failed-password fingerprints of a user, truncated (pg-shared-state.ts says why).
CREATE TABLE shared_penalties (
  kind     "char" NOT NULL CHECK (kind IN ('a', 'u')),
  name     text NOT NULL,
  failures integer NOT NULL,
  last_ms  bigint NOT NULL,
  tried    text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (kind, name)
);
CREATE INDEX shared_penalties_last ON shared_penalties (last_ms);

-- Roles one node at a time holds (the retention sweeper): a lease its holder renews.
CREATE TABLE shared_leases (
  name       text PRIMARY KEY,
  holder     uuid NOT NULL,
  node       text NOT NULL,
  expires_at timestamptz NOT NULL
);

-- Takes a session slot of p_user for p_holder unless the user's live sessions reach p_cap
-- (0: no cap, still counted). The advisory lock serialises the logins of one user across nodes.
CREATE FUNCTION poplar_acquire_user(p_holder uuid, p_node text, p_lease integer, p_token uuid, p_user text, p_cap integer)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('poplar-user:' || p_user, 0));
  IF p_cap > 0 AND (SELECT count(*) FROM shared_user_sessions s JOIN shared_holders h ON h.id = s.holder
                    WHERE s.user_name = p_user AND h.expires_at > now()) >= p_cap THEN
    RETURN false;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM shared_holders WHERE id = p_holder) THEN
    INSERT INTO shared_holders (id, node, expires_at) VALUES (p_holder, p_node, now() + make_interval(secs => p_lease))
    ON CONFLICT (id) DO NOTHING;
  END IF;
  INSERT INTO shared_user_sessions (token, holder, user_name) VALUES (p_token, p_holder, p_user);
  RETURN true;
END $$;

-- Counts a failed login as LocalSharedState.loginFailedNow does (src/shared/local-state.ts): the
-- user's counter first (a fingerprint already tried for the user is not counted again), then the
-- address's; a counter idle for more than p_window ms starts again. Returns the larger count.
CREATE FUNCTION poplar_login_failed(p_ip text, p_user text, p_fp text, p_now bigint, p_window bigint)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  u_failures integer := 0;
  i_failures integer;
  u_tried text[] := '{}';
  stale boolean := false;
BEGIN
  IF p_user IS NOT NULL THEN
    INSERT INTO shared_penalties AS p (kind, name, failures, last_ms) VALUES ('u', p_user, 0, p_now)
    ON CONFLICT (kind, name) DO UPDATE SET
      failures = CASE WHEN p_now - p.last_ms <= p_window THEN p.failures ELSE 0 END,
      tried = CASE WHEN p_now - p.last_ms <= p_window THEN p.tried ELSE '{}' END
    RETURNING failures, tried INTO u_failures, u_tried;
    stale := p_fp IS NOT NULL AND p_fp = ANY (u_tried);
    IF NOT stale THEN
      u_failures := u_failures + 1;
      IF p_fp IS NOT NULL THEN u_tried := (u_tried || p_fp)[greatest(1, cardinality(u_tried) - 6):]; END IF;
    END IF;
    UPDATE shared_penalties SET failures = u_failures, tried = u_tried, last_ms = p_now WHERE kind = 'u' AND name = p_user;
  END IF;
  INSERT INTO shared_penalties AS p (kind, name, failures, last_ms) VALUES ('a', p_ip, CASE WHEN stale THEN 0 ELSE 1 END, p_now)
  ON CONFLICT (kind, name) DO UPDATE SET
    failures = CASE WHEN p_now - p.last_ms <= p_window THEN p.failures ELSE 0 END + CASE WHEN stale THEN 0 ELSE 1 END,
    last_ms = p_now
  RETURNING failures INTO i_failures;
  RETURN greatest(i_failures, u_failures);
END $$;

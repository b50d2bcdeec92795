-- Delivery in one statement, and each maildrop's usage kept on its row (issue 15 "Performance";
-- R-S12, R-S16, R-S17, R-X6, R-X18): src/storage/postgres/pg-store.ts, pg-bodies.ts. Applied by
-- `poplar db migrate` in one transaction.

-- R-S16: the maildrop's messages and their octets (exact sizes, R-S4; hidden messages included, as
-- they count towards the quota until retention removes them). Changed only together with the
-- messages they count, in the same transaction, under the maildrop row's lock: poplar_deliver adds,
-- removeMessages (pg-bodies.ts) subtracts what it deleted. So a quota check reads one row, not
-- every message of the maildrop.
ALTER TABLE maildrops
  ADD COLUMN messages bigint NOT NULL DEFAULT 0,
  ADD COLUMN octets   bigint NOT NULL DEFAULT 0;

UPDATE maildrops d SET messages = u.n, octets = u.octets
  FROM (SELECT maildrop_id, count(*) AS n, sum(size) AS octets FROM messages GROUP BY maildrop_id) u
  WHERE u.maildrop_id = d.id;

-- One delivery (pg-store.ts deliver), one round trip: locks the maildrop's row (created on first
-- delivery) and reads its usage; over the quota (p_quota_* > 0 and the message does not fit: the
-- rule of overQuota in src/storage/mail-store.ts) it returns uid NULL having written nothing;
-- else it attaches the body (p_body, attached by the caller in this transaction, or the body
-- with these octets: inserted with its rows, p_data cut at p_starts / p_ends (pg-bodies.ts
-- rowStarts, rows of p_chunk_octets), or found and held FOR KEY SHARE, pg-bodies.ts's reference
-- rule), takes the uid (R-S12: greatest(next_uid, p_wanted), the
-- counter advanced past it), adds the message to the usage and inserts the message. Returns the
-- uid and the usage before the message.
-- The maildrop is locked before the body, the order retention and removeMessages lock in.
CREATE FUNCTION poplar_deliver(
  p_name text, p_wanted bigint, p_body bigint, p_sha256 bytea, p_octets bigint, p_data bytea,
  p_starts integer[], p_ends integer[], p_chunk_octets integer, p_size bigint, p_head bytea, p_uidl text, p_received timestamptz, p_seen boolean,
  p_quota_bytes bigint, p_quota_messages bigint,
  OUT uid bigint, OUT before_messages bigint, OUT before_octets bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_drop bigint;
  v_body bigint := p_body;
BEGIN
  LOOP
    SELECT d.id, d.messages, d.octets INTO v_drop, before_messages, before_octets
      FROM maildrops d WHERE d.name = p_name FOR NO KEY UPDATE;
    EXIT WHEN FOUND;
    INSERT INTO maildrops (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
  END LOOP;
  IF (p_quota_bytes > 0 AND before_octets + p_size > p_quota_bytes)
     OR (p_quota_messages > 0 AND before_messages + 1 > p_quota_messages) THEN
    RETURN;
  END IF;
  WHILE v_body IS NULL LOOP
    INSERT INTO bodies (sha256, octets, chunk_octets) VALUES (p_sha256, p_octets, p_chunk_octets)
      ON CONFLICT (sha256) DO NOTHING RETURNING id INTO v_body;
    IF v_body IS NOT NULL THEN
      INSERT INTO body_chunks (body_id, seq, data)
        SELECT v_body, r.n - 1, substring(p_data FROM r.s + 1 FOR r.e - r.s)
        FROM unnest(p_starts, p_ends) WITH ORDINALITY AS r(s, e, n);
    ELSE
      -- NULL when the body was removed with its last message since the insert saw it: again.
      SELECT b.id INTO v_body FROM bodies b WHERE b.sha256 = p_sha256 FOR KEY SHARE;
    END IF;
  END LOOP;
  UPDATE maildrops d SET next_uid = greatest(d.next_uid, p_wanted) + 1,
                         messages = d.messages + 1, octets = d.octets + p_size
    WHERE d.id = v_drop RETURNING d.next_uid - 1 INTO uid;
  INSERT INTO messages (maildrop_id, uid, body_id, size, head, uidl, received_at, retrieved_at)
    VALUES (v_drop, uid, v_body, p_size, p_head, p_uidl, p_received, CASE WHEN p_seen THEN p_received END);
END
$$;

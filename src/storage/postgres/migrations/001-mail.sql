-- poplar mail storage on PostgreSQL (issue 15; R-S3, R-S4, R-S11, R-S12, R-X11, R-X12, R-X17, R-X18).
-- Applied by `poplar db migrate` (src/storage/postgres/migrate.ts) in one transaction.

-- One row per maildrop. next_uid is R-S12's counter: a delivery takes it and adds one in its own
-- transaction, so uids increase and are never reused, whichever node delivers and whatever is deleted.
CREATE TABLE maildrops (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  next_uid   bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- R-X18: a message body stored once for every message with the same octets (a message delivered
-- to many recipients in one LMTP transaction: only the trace headers differ, kept per message).
-- Removed in the transaction that removes its last message (store.ts: lock, delete, check).
CREATE TABLE bodies (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sha256     bytea NOT NULL UNIQUE,
  octets     bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The body's octets as stored, in chunks of at most 256 KiB read one at a time (RETR in bounded
-- memory, R-X9). Stored uncompressed out of line: RETR reads them without decompressing.
CREATE TABLE body_chunks (
  body_id bigint NOT NULL REFERENCES bodies (id) ON DELETE CASCADE,
  seq     integer NOT NULL,
  data    bytea NOT NULL,
  PRIMARY KEY (body_id, seq)
);
ALTER TABLE body_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- One row per message of a maildrop. The storage id is the uid as decimal text.
--   size:         R-S4 exact CRLF octets of head + body, computed once at delivery
--   head:         this delivery's own first octets (trace headers), then the shared body
--   uidl:         R-X11 a carried-over UIDL (import), NULL for poplar's own mail
--   retrieved_at: set at UPDATE for a retrieved message (MessageInfo.seen)
--   hidden_at:    R-X12 DELE in `hide` mode: never listed again, kept for retention
CREATE TABLE messages (
  maildrop_id  bigint NOT NULL REFERENCES maildrops (id),
  uid          bigint NOT NULL,
  body_id      bigint NOT NULL REFERENCES bodies (id),
  size         bigint NOT NULL,
  head         bytea NOT NULL,
  uidl         text,
  received_at  timestamptz NOT NULL,
  retrieved_at timestamptz,
  hidden_at    timestamptz,
  PRIMARY KEY (maildrop_id, uid),
  CHECK (uidl IS NULL OR uidl ~ '^[!-~]{1,70}$')
);
CREATE INDEX messages_body ON messages (body_id);

-- Sessions' claims on a maildrop (R-S3): every open snapshot holds one, an exclusive one
-- (`pop3.lock_mode = "exclusive"`, [IN-USE]) keeps every other open out, and retention removes
-- nothing while any is live. A claim is a lease: its node renews it while the session lives, and a
-- dead node's claims lapse at expires_at (`postgres.lease_seconds`).
CREATE TABLE maildrop_claims (
  token       uuid PRIMARY KEY,
  maildrop_id bigint NOT NULL REFERENCES maildrops (id),
  exclusive   boolean NOT NULL,
  node        text NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX maildrop_claims_maildrop ON maildrop_claims (maildrop_id);

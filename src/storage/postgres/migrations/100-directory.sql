-- poplar users and policy on PostgreSQL (issue 15; R-X17, R-X8, R-K3, R-S16, R-S18, R-X10), for
-- `auth.directory = "postgres"`: src/auth/postgres-directory.ts, src/policy/postgres-user-policy.ts,
-- src/policy/postgres-poll-state.ts. Applied by `poplar db migrate` in one transaction.

-- One row per user. password: the stored credential with its {SCHEME} (auth/password.ts); scram,
-- nt, cram, secret: the extra credentials challenge mechanisms need (auth/credentials.ts:
-- poplar_scram, poplar_nt, poplar_cram, poplar_secret), NULL when not stored. id: the order added.
CREATE TABLE users (
  id       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  name     text PRIMARY KEY,
  password text NOT NULL,
  scram    text,
  nt       text,
  cram     text,
  secret   text
);

-- R-K3: `poplar grant USER MAILBOX` lets USER open MAILBOX with `USER user/mailbox`; id: the order granted.
CREATE TABLE user_grants (
  id        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  user_name text NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
  mailbox   text NOT NULL,
  PRIMARY KEY (user_name, mailbox)
);
CREATE INDEX user_grants_mailbox ON user_grants (mailbox);

-- Per-user overrides of the server-wide policy (`poplar quota set`, `poplar retention set`);
-- NULL: the default of the configuration. A row is removed when its last override is.
CREATE TABLE user_policy (
  name                   text PRIMARY KEY,
  quota_bytes            bigint CHECK (quota_bytes >= 0),
  quota_messages         bigint CHECK (quota_messages >= 0),
  retrieved_days         bigint CHECK (retrieved_days >= 0),
  unretrieved_days       bigint CHECK (unretrieved_days >= 0),
  login_delay            bigint CHECK (login_delay >= 0),
  download_bytes_per_day bigint CHECK (download_bytes_per_day >= 0)
);

-- R-X10 per maildrop, shared by every node: the last admitted login (ms since the epoch, for
-- LOGIN-DELAY) and the octets RETR/TOP sent on the UTC day `day` (the daily download cap).
CREATE TABLE poll_state (
  mailbox    text PRIMARY KEY,
  last_login bigint,
  day        date,
  octets     bigint NOT NULL DEFAULT 0
);

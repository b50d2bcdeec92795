/**
 * Which config keys a reload does not apply (R-X13, R-S20), read through config/keys.ts. The names
 * are typed by the schema (`DottedKey`), so a key the schema lacks does not compile.
 */
import type { DottedKey } from './schema.js';

/**
 * The keys a reload (SIGHUP, `poplar reload`) does not apply, with what holds them from the start:
 * a reload that changes one logs it and `poplar reload` names it as needing a restart. Every other
 * key is applied by a reload, to new sessions and deliveries (live sessions keep their settings).
 * docgen shows this in docs/configuration.md; test/ops/reload.test.ts proves both kinds on a running server.
 */
export const RESTART_KEYS: Readonly<Partial<Record<DottedKey, string>>> = {
  'server.data_dir': 'the users file, mail and state paths derived from it',
  'server.first_run_user': 'read once, when the server starts on an empty data directory',
  'server.pid_file': 'written when the server starts',
  'server.metrics_listen': 'a listening socket',
  'server.workers': 'the worker processes',
  'pop3.listen': 'listening sockets',
  'pop3.tls_listen': 'listening sockets',
  'pop3.hostname': 'the LMTP greeting and delivery headers (POP3 sessions take the new name at once)',
  'auth.users_file': 'the open user directory',
  'auth.gssapi_keytab': 'the GSSAPI acceptor (the keytab file itself is read again at every login)',
  'auth.gssapi_service': 'the GSSAPI acceptor',
  'auth.gssapi_realms': 'the GSSAPI acceptor',
  'auth.directory': 'the open user directory',
  'ldap.url': 'the open LDAP directory',
  'ldap.base_dn': 'the open LDAP directory',
  'ldap.user_filter': 'the open LDAP directory',
  'ldap.bind_dn': 'the open LDAP directory',
  'ldap.bind_password': 'the open LDAP directory',
  'ldap.bind_password_file': 'the open LDAP directory',
  'ldap.starttls': 'the open LDAP directory',
  'ldap.ca_file': 'the open LDAP directory',
  'ldap.timeout_ms': 'the open LDAP directory',
  'ldap.password_mode': 'the open LDAP directory',
  'ldap.user_attribute': 'the open LDAP directory',
  'ldap.mail_attribute': 'the open LDAP directory',
  'ldap.maildrop_attribute': 'the open LDAP directory',
  'ldap.quota_attribute': 'the open LDAP directory',
  'ldap.master_attribute': 'the open LDAP directory',
  'ldap.password_attribute': 'the open LDAP directory',
  'auth.scrypt_cost': 'the server\'s check of unknown users (`poplar user` commands read it every time)',
  'storage.backend': 'the open mail store',
  'storage.maildir_path': 'the open mail store',
  'storage.maildir_dirty_window': 'the open mail store',
  'storage.maildir_reads': 'the open mail store',
  'postgres.url': 'the open database connections',
  'postgres.pool_size': 'the open database connections',
  'postgres.connect_timeout': 'the open database connections',
  'postgres.statement_timeout': 'the open database connections',
  'postgres.lease_seconds': 'the open mail store',
  'lmtp.listen': 'listening sockets',
  'lmtp.max_message_size': 'the LMTP listener',
  'lmtp.max_recipients': 'the LMTP listener',
  'lmtp.recipient_delimiter': 'the LMTP delivery agent (`poplar deliver` reads it every time)',
  'quota.warn_percent': 'the LMTP delivery agent (`poplar deliver` reads it every time)',
  'quota.over_quota': 'the LMTP delivery agent (`poplar deliver` reads it every time)',
  'policy.users_file': 'the open policy file',
  'policy.state_dir': 'the open poll state',
  'admin.listen': 'a listening socket',
  'admin.tls_cert': 'the admin listener',
  'admin.tls_key': 'the admin listener',
  'admin.tokens_file': 'the admin listener (`poplar admin token` reads it every time)',
};

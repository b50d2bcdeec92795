/**
 * The mail-flow sections of the config schema (config/schema.ts): LMTP delivery, quotas,
 * retention and the per-user/poll policy. Same rules as the rest of the schema: every key has its
 * default, range, doc string and requirement ids.
 */
import { z } from 'zod';
import { byteSize } from '../policy/quota.js';
import { listenAddress, meta } from './schema-meta.js';

export const lmtp = z
  .strictObject({
    listen: z.array(listenAddress).default([]).meta(meta({
      description:
        'Addresses to accept LMTP (RFC 2033) deliveries on, each `host:port`, e.g. `127.0.0.1:24`; ' +
        'empty: no LMTP listener. LMTP has no authentication: bind it to loopback or a trusted network.',
      requirements: ['R-X6'],
    })),
    max_message_size: byteSize(z.number().int().min(1024).default(50 * 1024 * 1024)).meta(meta({
      description:
        'Largest message accepted, in octets (or a string such as `"50M"`: K, M, G are powers of 1024), ' +
        'advertised as SIZE (RFC 1870); a larger one is refused ' +
        'with `552 5.3.4` for every recipient. The message is held in memory while it is delivered.',
      requirements: ['R-X6'],
    })),
    max_recipients: z.number().int().min(1).default(100).meta(meta({
      description: 'Recipients accepted in one transaction; more get `452 4.5.3` (RFC 5321 §4.5.3.1.10).',
      requirements: ['R-X6'],
    })),
    recipient_delimiter: z.string().max(1).default('+').meta(meta({
      description:
        'A recipient `user+detail@domain` that is not itself a user is delivered to `user`; `""` turns ' +
        'this off. As Postfix\'s `recipient_delimiter`.',
      requirements: ['R-X6'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Mail delivery by LMTP (and `poplar deliver`, which shares the quota rules).' }));

export const quota = z
  .strictObject({
    bytes: byteSize(z.number().int().min(0).default(0)).meta(meta({
      description:
        'Default storage quota of every maildrop, in octets (exact sizes, R-S4), or a string such as `"100M"` ' +
        '(K, M, G are powers of 1024, as in `poplar quota set --bytes`); `0` is unlimited.',
      requirements: ['R-S16'],
    })),
    messages: z.number().int().min(0).default(0).meta(meta({
      description: 'Default quota on the number of messages in every maildrop; `0` is unlimited.',
      requirements: ['R-S16'],
    })),
    warn_percent: z.array(z.number().int().min(1).max(100)).default([80, 95]).meta(meta({
      description:
        'When a delivery takes a maildrop across one of these percentages of its quota (bytes or ' +
        'messages, whichever is fuller), one warning message is put in the maildrop; `[]` disables warnings.',
      requirements: ['R-S17'],
    })),
    over_quota: z.enum(['reject', 'defer']).default('reject').meta(meta({
      description:
        '`reject`: a delivery over quota is refused for good (LMTP `552 5.2.2`, `poplar deliver` exit 73). ' +
        '`defer`: refused for now, the sender retries (LMTP `452 4.2.2`, exit 75).',
      requirements: ['R-S16', 'R-X6'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Storage quotas, enforced at delivery; per-user values are set with `poplar quota set`.' }));

export const retention = z
  .strictObject({
    retrieved_days: z.number().int().min(0).default(0).meta(meta({
      description:
        'Messages a client has retrieved (RETR) are removed this many days after they arrived; `0` keeps ' +
        'them. RFC 1939 §8\'s example is 7.',
      requirements: ['R-S18', 'R-X10'],
    })),
    unretrieved_days: z.number().int().min(0).default(0).meta(meta({
      description:
        'Messages never retrieved are removed this many days after they arrived; `0` keeps them. ' +
        'RFC 1939 §8\'s example is 60.',
      requirements: ['R-S18', 'R-X10'],
    })),
    sweep_interval: z.number().int().min(0).default(3600).meta(meta({
      description:
        'Seconds between the runs of the retention sweeper inside `poplar serve`; `0`: only `poplar expire` ' +
        'removes expired mail.',
      requirements: ['R-S18'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Retention: removal of old mail, advertised to clients as CAPA EXPIRE (RFC 2449 §6.7).' }));

export const policy = z
  .strictObject({
    users_file: z.string().min(1).default('{data_dir}/user-policy.toml').meta(meta({
      description:
        'TOML file of per-user values that override `[quota]`, `[retention]`, `login_delay` and ' +
        '`download_bytes_per_day` ' +
        '(written by `poplar quota set` and `poplar retention set`); read again whenever it changes.',
      requirements: ['R-S16', 'R-S18', 'R-X10'],
      path: true,
    })),
    login_delay: z.number().int().min(0).default(0).meta(meta({
      description:
        'Seconds a client must wait between logins to one maildrop, advertised as CAPA LOGIN-DELAY (RFC 2449 ' +
        '§6.5) and enforced: a login sooner after the previous successful one gets `-ERR [LOGIN-DELAY]`. ' +
        '`0` neither advertises nor enforces anything.',
      requirements: ['R-X10'],
    })),
    download_bytes_per_day: byteSize(z.number().int().min(0).default(0)).meta(meta({
      description:
        'Octets RETR and TOP may send from one maildrop per UTC day (or a string such as `"500M"`: K, M, ' +
        'G are powers of 1024); once reached they answer ' +
        '`-ERR [SYS/TEMP] Daily download limit reached` until midnight UTC. A message that starts below the ' +
        'limit is sent whole. `0` is unlimited; per user with `poplar quota set --download-per-day`.',
      requirements: ['R-X10'],
    })),
    state_dir: z.string().min(1).default('{data_dir}/policy-state').meta(meta({
      description:
        'Where the server keeps, per maildrop, the time of the last login and the octets downloaded today ' +
        '(one small JSON file each), so LOGIN-DELAY and the download limit hold across restarts.',
      requirements: ['R-X10'],
      path: true,
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Per-user policy overrides and the poll policy.' }));

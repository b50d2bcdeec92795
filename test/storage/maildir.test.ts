import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../../src/storage/maildir/maildir-store.js';
import { runMailStoreConformance } from './conformance.js';

runMailStoreConformance('maildir', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-maildir-'));
  const store = new MaildirStore({ path: (mailbox) => join(dir, 'mail', mailbox, 'Maildir') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

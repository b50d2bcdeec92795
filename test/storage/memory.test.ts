import { MemoryMailStore } from '../../src/storage/memory/memory-store.js';
import { runMailStoreConformance } from './conformance.js';

runMailStoreConformance('memory', async () => {
  const store = new MemoryMailStore();
  return { store, cleanup: () => store.close() };
});

/**
 * R-X16: a worker's first step. It asks the primary for the shared state's key (the login
 * cache's and the penalty fingerprints' HMAC key, never written anywhere) over the IPC channel,
 * and from then on asks the primary's shared state for every limit (shared/ipc-client.ts).
 */
import { CliError } from './common.js';
import { IpcSharedState, processPort } from '../shared/ipc-client.js';

/** How long a new worker waits for the primary's hello, ms. */
const HELLO_TIMEOUT_MS = 10_000;

export async function connectWorker(): Promise<IpcSharedState> {
  const port = processPort();
  const key = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CliError('the primary process did not answer')), HELLO_TIMEOUT_MS);
    const onMessage = (m: unknown): void => {
      const hello = m as { t?: unknown; key?: unknown };
      if (hello === null || typeof hello !== 'object' || hello.t !== 'hello' || typeof hello.key !== 'string') return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(Buffer.from(hello.key, 'hex'));
    };
    process.on('message', onMessage);
    port.send({ t: 'hi' });
  });
  return new IpcSharedState(port, key);
}

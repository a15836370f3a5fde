import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TestEnvironment } from 'jest-environment-node';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/**
 * Jest's node environment, with each test file's garbage collected once the file is done.
 *
 * Every file loads Nest, ioredis and the library into a context of its own, so a worker's heap
 * grows by a few dozen MB of garbage per file. Jest ends its workers with a 500 ms budget and a
 * worker's exit takes longer the larger its heap: a worker holding one file's heap exits in time on
 * a busy machine. Recycling big workers instead (`workerIdleMemoryLimit`) raced the end of the run,
 * when a worker restarted by the last file's check had to boot and exit within that budget.
 */
export default class CollectedEnvironment extends TestEnvironment {
  override async teardown(): Promise<void> {
    await super.teardown();
    collectGarbage();
  }
}

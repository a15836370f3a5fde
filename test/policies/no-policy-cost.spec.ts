import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { DistributedLock, DistributedLockModule } from '../../src';
import { ACQUIRE, RELEASE_AND_RECORD } from '../../src/core/redis/scripts';
import { createReplica } from '../support/create-replica';
import { recordCommands } from '../support/record-commands';
import { startTestRedis, type TestRedis } from '../support/redis-server';

@Injectable()
class PlainNightly {
  @Cron('0 0 0 * * *')
  @DistributedLock({ key: 'cost:plain', ttlMs: 10_000 })
  run(): void {}
}

@Injectable()
class RetriedNightly {
  @Cron('0 0 0 * * *')
  @DistributedLock({ key: 'cost:retried', ttlMs: 10_000, retry: { attempts: 2, backoffMs: 60_000 } })
  run(): void {}
}

// What a scheduled run sends to Redis, as MONITOR sees it: a job without a policy pays nothing for
// policies (the acquisition and release scripts it always sent, no ledger, no heartbeat); a job
// with one claims its occurrence in its ledger with the lock.
describe('the cost of policies on the wire (MONITOR, real Redis)', () => {
  let redis: TestRedis;
  let app: INestApplicationContext;

  beforeAll(async () => {
    redis = await startTestRedis();
    app = await createReplica(
      [DistributedLockModule.forRoot({ url: redis.url, logger: false })],
      [PlainNightly, RetriedNightly],
    );
  });
  afterAll(async () => {
    await app.close();
    await redis.dispose();
  });

  it('a job without a policy: one EVALSHA of the acquisition script, one of the release, nothing else', async () => {
    const everything = await recordCommands(
      redis.url,
      '',
      () => app.get(PlainNightly).run() as unknown as Promise<void>,
    );
    const sent = everything.filter((command) => command.source === 'client' && command.words[0] !== 'echo');
    expect(sent.map((command) => [command.words[0], command.words[1]])).toEqual([
      ['evalsha', ACQUIRE.sha],
      ['evalsha', RELEASE_AND_RECORD.sha],
    ]);
    expect(
      everything.some((command) => command.words.some((word) => /:attempts|:occurrences|instances:/.test(word))),
    ).toBe(false);
  });

  it('a job with a policy: one EVALSHA that claims the occurrence in the ledger, then the ledger write and the release', async () => {
    // Its scripts were loaded when the job was adopted at boot: even its first run sends EVALSHA only.
    const sent = (
      await recordCommands(redis.url, 'cost:retried', () => app.get(RetriedNightly).run() as unknown as Promise<void>)
    ).filter((command) => command.source === 'client');
    expect(sent.map((command) => command.words[0])).toEqual(['evalsha', 'evalsha', 'evalsha']);
    expect(sent[0].words.slice(3, 8)).toEqual([
      'lock:{cost:retried}',
      'lock:{cost:retried}:state',
      'lock:{cost:retried}:paused',
      'lock:{cost:retried}:occurrences',
      'lock:{cost:retried}:attempts',
    ]);
  });
});

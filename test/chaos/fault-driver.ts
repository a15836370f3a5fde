import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startTestRedis, type TestRedis } from '../support/redis-server';
import { REPLICA_SCRIPT, REPO_ROOT } from './chaos-build';
import { CHAOS_JOBS, type DriverRecord, FAULT_KINDS, type FaultKind, JsonLinesWriter, monoMs } from './execution-log';
import { findLibfaketime } from './faketime';
import { MIN_NOTICE_MS } from './replica-control';
import { type Replica, ReplicaSet } from './replica-set';

/** Fixed clock offsets, in ms, given to the replicas in this order (more replicas spread over ±1 s). */
const SKEWS_MS: Record<number, number[]> = {
  1: [0],
  2: [-400, 600],
  3: [-900, 0, 1000],
  4: [-900, -300, 400, 1000],
  5: [-900, -300, 0, 400, 1000],
};

export function skewsFor(replicas: number): number[] {
  return (
    SKEWS_MS[replicas] ??
    Array.from({ length: replicas }, (_, i) => Math.round(-1000 + (2000 * i) / (replicas - 1) / 100) * 100)
  );
}

export interface ChaosOptions {
  replicas: number;
  /** Faults are injected until this much time has passed (one fault of each kind at least). */
  faultPhaseMs: number;
  /** `fixed`: the kinds in FAULT_KINDS order, over and over; `shuffled`: a new random order per cycle. */
  order: 'fixed' | 'shuffled';
  seed: number;
  /** Lock TTL of the jobs. @default 1500 */
  ttlMs?: number;
  /** The share of every-5-seconds attempts that fail on purpose, chosen by the seed. @default 0.2 */
  failureShare?: number;
  /** Added after a fault's end plus the TTL before the system counts as healthy again. @default 2000 */
  settleMs?: number;
  /** Healthy time left after each fault's window (TTL + settle), to check ticks in. @default 2500 */
  healthyGapMs?: number;
  /** Up to this much more healthy time, at random. @default 2000 */
  gapJitterMs?: number;
  /** Where the logs go; created if missing. */
  runDir: string;
  /** The command that reproduces the run, recorded in the logs. */
  command: string;
  /** Progress lines. */
  progress?: (line: string) => void;
}

/** late-timer: the block starts this long before an every-5-seconds occurrence, by the target's clock. */
const LATE_TIMER_LEAD_MS = 300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or undefined when it takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A small seeded generator (mulberry32), so a run's choices can be replayed with its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs replicas of the chaos app as child processes against a private redis-server and injects
 * faults one at a time: SIGKILL of a replica mid-job (then a restart), SIGSTOP/SIGCONT of a
 * replica for longer than the TTL, Redis killed and started again, Redis frozen with SIGSTOP,
 * SIGTERM of a replica mid-job (it drains and exits by itself, then a restart), and a replica's
 * event loop blocked across an every-5-seconds occurrence. Each replica keeps a fixed clock skew
 * (libfaketime) for its lifetime. Everything it does is written to `<runDir>/driver.jsonl`; the
 * replicas write `<runDir>/replica-<id>.jsonl`.
 */
export class FaultDriver {
  readonly ttlMs: number;
  readonly settleMs: number;
  readonly failureShare: number;
  private readonly next: () => number;
  private readonly log: JsonLinesWriter;
  private readonly fleet: ReplicaSet;
  private readonly faketime = findLibfaketime();
  private redis: TestRedis | undefined;

  constructor(private readonly options: ChaosOptions) {
    this.ttlMs = options.ttlMs ?? 1500;
    this.settleMs = options.settleMs ?? 2000;
    this.failureShare = options.failureShare ?? 0.2;
    this.next = random(options.seed);
    mkdirSync(options.runDir, { recursive: true });
    this.log = new JsonLinesWriter(join(options.runDir, 'driver.jsonl'));
    this.fleet = new ReplicaSet({
      script: REPLICA_SCRIPT,
      cwd: REPO_ROOT,
      runDir: options.runDir,
      skews: skewsFor(options.replicas),
      ttlMs: this.ttlMs,
      seed: options.seed,
      failureShare: this.failureShare,
      faketime: this.faketime,
      log: this.log,
      say: (line) => this.say(line),
    });
  }

  private get replicas(): Replica[] {
    return this.fleet.replicas;
  }

  /** Runs the whole scenario and stops everything it started, also when it fails. */
  async run(): Promise<void> {
    try {
      await this.scenario();
    } finally {
      await this.stopAll();
      this.log.close();
    }
  }

  private async scenario(): Promise<void> {
    if (!existsSync(REPLICA_SCRIPT)) throw new Error(`${REPLICA_SCRIPT} is missing: build it with buildReplicaApp()`);
    this.redis = await startTestRedis();
    if (!this.redis.controllable) throw new Error('The chaos run needs a redis-server it can stop (unset REDIS_URL).');
    const skewed = this.replicas.some((replica) => replica.skewMs !== 0);
    if (skewed && !this.faketime) this.say('libfaketime not found: the replicas run without clock skew');
    this.log.write({
      type: 'run',
      at: monoMs(),
      wallMinusMonoMs: Date.now() - monoMs(),
      ttlMs: this.ttlMs,
      settleMs: this.settleMs,
      seed: this.options.seed,
      redisPort: this.redis.port,
      replicas: this.replicas.map(({ id, skewMs }) => ({ id, skewMs: this.faketime ? skewMs : 0 })),
      faketime: this.faketime,
      command: this.options.command,
      failureShare: this.failureShare,
    } satisfies DriverRecord);

    await Promise.all(this.replicas.map((replica) => this.spawn(replica)));
    const steadyStart = monoMs();
    this.say(`${this.replicas.length} replicas ready; redis on port ${this.redis.port}`);
    await this.idle(3_000);

    const phaseEnd = monoMs() + this.options.faultPhaseMs;
    const gapMs = this.options.healthyGapMs ?? 2_500;
    const jitterMs = this.options.gapJitterMs ?? 2_000;
    let done = 0;
    for (let cycle = 0; done < FAULT_KINDS.length || monoMs() < phaseEnd; cycle++) {
      const kinds = this.options.order === 'fixed' || cycle === 0 ? [...FAULT_KINDS] : this.shuffled(FAULT_KINDS);
      for (const kind of kinds) {
        if (done >= FAULT_KINDS.length && monoMs() >= phaseEnd) break;
        await this.inject(kind, cycle === 0);
        done++;
        // Let the fault's effects pass (TTL + settle), then leave some healthy ticks to check.
        await this.idle(this.ttlMs + this.settleMs + gapMs + this.next() * jitterMs);
      }
    }
    this.log.write({ type: 'steady', start: steadyStart, end: monoMs() } satisfies DriverRecord);
  }

  /** Injects one fault. In the first cycle replica faults always hit the replica running the job. */
  private async inject(kind: FaultKind, firstCycle: boolean): Promise<void> {
    switch (kind) {
      case 'replica-kill':
        return this.killReplica(firstCycle || this.next() < 0.75);
      case 'replica-stop': {
        // The first time, long enough for another replica to take over before the frozen one resumes.
        const pauseMs = firstCycle ? this.ttlMs + 1_500 : this.ttlMs + 700 + this.next() * 1_000;
        return this.stopReplica(firstCycle || this.next() < 0.75, pauseMs);
      }
      case 'redis-restart':
        return this.restartRedis(300 + this.next() * 1_200);
      case 'redis-pause':
        return this.pauseRedis(1_500 + this.next() * 1_000);
      case 'replica-term':
        return this.terminateReplica(firstCycle || this.next() < 0.75);
      case 'late-timer':
        return this.blockEventLoop(firstCycle || this.next() < 0.75, 1_000 + this.next() * 500);
      case 'fleet-kill':
        return this.killFleet(6_000 + this.next() * 3_000);
    }
  }

  /**
   * Every replica SIGKILLed at once, down across at least one every-5-seconds occurrence, then all
   * started again: the runs cut off are recovered, the occurrences missed are caught up.
   */
  private async killFleet(downMs: number): Promise<void> {
    this.fleet.pump();
    const midJob = this.replicas.some((replica) => this.fleet.openIn(replica.pid).length > 0);
    const start = monoMs();
    const pids = this.replicas.map((replica) => replica.pid!);
    for (const replica of this.replicas) {
      replica.killedAt = start;
      replica.process!.kill('SIGKILL');
    }
    await Promise.all(this.replicas.map((replica) => replica.exited));
    await sleep(downMs);
    const readyAt = Math.max(...(await Promise.all(this.replicas.map((replica) => this.spawn(replica)))));
    const detail = `SIGKILL of every replica (pids ${pids.join(', ')}), down ${Math.round(readyAt - start)} ms, restarted`;
    this.fault('fleet-kill', 'fleet', 0, start, readyAt, midJob, detail);
  }

  private async killReplica(aimAtHolder: boolean): Promise<void> {
    const { replica, midJob } = await this.pickTarget(aimAtHolder);
    const pid = replica.pid!;
    const start = monoMs();
    replica.killedAt = start;
    replica.process!.kill('SIGKILL');
    await replica.exited;
    await sleep(200 + this.next() * 1_300);
    const readyAt = await this.spawn(replica);
    this.fault('replica-kill', replica.id, pid, start, readyAt, midJob, `SIGKILL, restarted as pid ${replica.pid}`);
  }

  private async stopReplica(aimAtHolder: boolean, pauseMs: number): Promise<void> {
    const { replica, midJob } = await this.pickTarget(aimAtHolder);
    const start = monoMs();
    replica.process!.kill('SIGSTOP');
    await sleep(pauseMs);
    replica.process!.kill('SIGCONT');
    const end = monoMs();
    this.fault(
      'replica-stop',
      replica.id,
      replica.pid!,
      start,
      end,
      midJob,
      `SIGSTOP for ${Math.round(end - start)} ms`,
    );
  }

  private async restartRedis(downMs: number): Promise<void> {
    const start = monoMs();
    await this.redis!.kill();
    await sleep(downMs);
    await this.redis!.start();
    const end = monoMs();
    this.fault(
      'redis-restart',
      'redis',
      0,
      start,
      end,
      undefined,
      `SIGKILL, down ${Math.round(end - start)} ms, empty`,
    );
  }

  private async pauseRedis(pauseMs: number): Promise<void> {
    const start = monoMs();
    this.redis!.pause();
    await sleep(pauseMs);
    this.redis!.resume();
    const end = monoMs();
    this.fault('redis-pause', 'redis', 0, start, end, undefined, `SIGSTOP for ${Math.round(end - start)} ms`);
  }

  /**
   * A rolling restart: SIGTERM, then wait for the replica to exit by itself (SIGKILL if it has not
   * within the run's length plus 7.5 s), then start it again. The run aimed at is first stretched
   * past the TTL: its lock must then be extended while the replica drains, and a library that
   * gives the lock up at shutdown lets the next holder start while the run still works.
   */
  private async terminateReplica(aimAtHolder: boolean): Promise<void> {
    const { replica, exec } = await this.pickTarget(aimAtHolder);
    const pid = replica.pid!;
    const runMs = Math.min(this.ttlMs + 1_000, 15_000);
    const stretched = exec !== undefined && (await this.fleet.stretch(replica, runMs, 1_000))?.execs.includes(exec);
    this.fleet.pump();
    const midJob = this.fleet.openIn(pid).length > 0;
    const exited = replica.exited!;
    const start = monoMs();
    replica.terminatedAt = start;
    replica.process!.kill('SIGTERM');
    const boundMs = runMs + 7_500;
    let exit = await within(exited, boundMs);
    const bySelf = exit !== undefined;
    if (!exit) {
      replica.killedAt = monoMs();
      replica.process!.kill('SIGKILL');
      exit = await exited;
    }
    const readyAt = await this.spawn(replica);
    const how = bySelf
      ? `exited by itself after ${Math.round(exit.at - start)} ms (${exit.signal ?? `code ${exit.code}`})`
      : `still running after ${boundMs} ms, SIGKILLed`;
    const target = stretched ? `, its run stretched to ${runMs} ms` : '';
    this.fault(
      'replica-term',
      replica.id,
      pid,
      start,
      readyAt,
      midJob,
      `SIGTERM${target}; ${how}; restarted as pid ${replica.pid}`,
    );
  }

  /**
   * Busy-waits the target's event loop from LATE_TIMER_LEAD_MS before an every-5-seconds
   * occurrence (by its clock) for `blockMs`, so its cron timers for that occurrence fire
   * 0.7 to 1.2 s late. When aimed, the target is the replica whose clock is slowest: every other
   * replica has run the occurrence by then, so a late firing misnamed after a later second is not
   * refused as already served but runs the occurrence a second time.
   */
  private async blockEventLoop(aimAtSlowest: boolean, blockMs: number): Promise<void> {
    const replica = aimAtSlowest
      ? this.replicas.reduce((slowest, candidate) => (candidate.skewMs < slowest.skewMs ? candidate : slowest))
      : this.replicas[Math.floor(this.next() * this.replicas.length)];
    const everyMs = CHAOS_JOBS.everyFiveSeconds.periodMs;
    const block = await this.fleet.blockLoop(
      replica,
      { everyMs, leadMs: LATE_TIMER_LEAD_MS, blockMs },
      everyMs + MIN_NOTICE_MS + blockMs + 5_000,
    );
    if (!block) throw new Error(`replica ${replica.id} (pid ${replica.pid}) never reported its event-loop block`);
    this.fault(
      'late-timer',
      replica.id,
      replica.pid!,
      block.start,
      block.end,
      undefined,
      `event loop blocked ${Math.round(block.end - block.start)} ms from ${Math.round(block.leadMs)} ms before ` +
        `${new Date(block.occurrence).toISOString()} by its clock`,
      block.occurrence,
    );
  }

  private fault(
    kind: FaultKind,
    target: string,
    pid: number,
    start: number,
    end: number,
    midJob: boolean | undefined,
    detail: string,
    occurrence?: number,
  ): void {
    this.log.write({
      type: 'fault',
      kind,
      target,
      pid,
      start,
      end,
      midJob,
      ...(occurrence !== undefined && { occurrence }),
      detail,
    } satisfies DriverRecord);
    const where = midJob === undefined ? '' : midJob ? ' mid-job' : ' (idle)';
    this.say(`${kind} ${target}${where}: ${detail}`);
  }

  /**
   * The replica to hit: when aiming at the holder, one with an execution that started 5 to 80 ms
   * ago (so at least 20 ms of its work remain), and that execution; otherwise, or if none shows
   * up within 5 s, any replica.
   */
  private async pickTarget(aimAtHolder: boolean): Promise<{ replica: Replica; midJob: boolean; exec?: string }> {
    if (aimAtHolder) {
      const deadline = monoMs() + 5_000;
      while (monoMs() < deadline) {
        this.fleet.pump();
        const now = monoMs();
        for (const execution of this.fleet.open.values()) {
          const replica = this.replicas.find((candidate) => candidate.id === execution.replica)!;
          const age = now - execution.start;
          if (execution.pid === replica.pid && age >= 5 && age <= 80) {
            return { replica, midJob: true, exec: execution.exec };
          }
        }
        await sleep(2);
      }
    }
    const replica = this.replicas[Math.floor(this.next() * this.replicas.length)];
    this.fleet.pump();
    return { replica, midJob: this.fleet.openIn(replica.pid).length > 0 };
  }

  private spawn(replica: Replica): Promise<number> {
    return this.fleet.spawn(replica, this.redis!.url);
  }

  /** Waits, keeping the view of open executions current. */
  private async idle(ms: number): Promise<void> {
    const until = monoMs() + ms;
    while (monoMs() < until) {
      await sleep(Math.min(50, Math.max(1, until - monoMs())));
      this.fleet.pump();
    }
  }

  private async stopAll(): Promise<void> {
    this.log.write({ type: 'stop', at: monoMs() } satisfies DriverRecord);
    await this.fleet.stopAll();
    await this.redis?.dispose();
  }

  private shuffled<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy;
  }

  private say(line: string): void {
    this.options.progress?.(line);
  }
}

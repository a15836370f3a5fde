#!/usr/bin/env node
import { hostname, userInfo } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import {
  ConflictingLockOptionsError,
  describeError,
  DistributedLockConfigError,
  DistributedLockError,
  InvalidLockArgumentError,
} from '../core/errors';
import { FleetInspector, MAX_CHECKED_OCCURRENCES } from '../core/fleet/fleet-inspector';
import { ENVIRONMENT_VARIABLES } from '../core/options/environment';
import { type Command, parseArguments, timeOf, USAGE, UsageError } from './arguments';
import { connect, connectionSettings, RedisUnreachableError } from './connection';
import { serveDashboard } from './dashboard-server';
import { driftText, historyText, json, missedText, statusText, time } from './output';

const PROGRAM = 'dpa-distributed-lock-cron';

/** The variables that say where Redis is (the others say how to use it). */
const TARGET_VARIABLES = (['url', 'host', 'port', 'sentinels', 'clusterNodes', 'nodes'] as const).map(
  (option) => ENVIRONMENT_VARIABLES[option],
);

const namesATarget = (env: Record<string, string | undefined>): boolean =>
  TARGET_VARIABLES.some((name) => env[name] !== undefined && env[name] !== '');

interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
}

const processIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
};

/**
 * Runs the command line `args` and resolves its exit code: 0 done, 1 failed at run time (Redis
 * unreachable, unknown job), 2 a bad command line or configuration. Errors are one line on stderr,
 * with any password given blanked out.
 */
export async function main(args: readonly string[], io: Io = processIo): Promise<number> {
  let secrets: readonly string[] = [];
  let client: Redis | Cluster | undefined;
  try {
    const invocation = parseArguments(args);
    const { command } = invocation;
    if (command.name === 'help') {
      io.out(USAGE);
      return 0;
    }
    const settings = connectionSettings(invocation.url, invocation.prefix, io.env);
    secrets = settings.secrets;
    // Nothing said where Redis is: say which server the defaults point at, before reading it.
    if (invocation.url === undefined && !namesATarget(io.env)) {
      io.err(
        `${PROGRAM}: no --url and none of ${TARGET_VARIABLES.join(', ')} set: reading Redis at ${settings.target.label}.`,
      );
    }
    client = await connect(settings.target, invocation.timeoutMs);
    const fleet = new FleetInspector(client, settings.keyPrefix, { historyRetentionMs: settings.historyRetentionMs });
    if (command.name === 'dashboard') return await serveDashboard(fleet, command, (line) => io.out(line));
    io.out(await run(command, fleet, invocation.json, invocation.timeoutMs));
    return 0;
  } catch (error) {
    const [message, code] = describe(error);
    io.err(`${PROGRAM}: ${redact(message, secrets)}`);
    return code;
  } finally {
    client?.disconnect();
  }
}

async function run(
  command: Exclude<Command, { name: 'help' | 'dashboard' }>,
  fleet: FleetInspector,
  asJson: boolean,
  timeoutMs: number,
): Promise<string> {
  const now = Date.now();
  switch (command.name) {
    case 'status': {
      const [jobs, locks, drift] = await Promise.all([fleet.jobs(), fleet.locks(), fleet.drift()]);
      return asJson ? json({ jobs, locks, drift }) : statusText(jobs, locks, fleet.keyPrefix, now) + driftText(drift);
    }
    case 'history': {
      const runs = await fleet.runs(command.job, { limit: command.limit, key: command.key });
      const key = command.key ?? (await fleet.jobRecord(command.job)).key!;
      return asJson ? json(runs) : historyText(command.job, key, runs);
    }
    case 'missed': {
      const since = command.since && timeOf(command.since, now);
      const window = { from: since, to: timeOf(command.until, now), key: command.key };
      if (since !== undefined && window.to < since) throw new UsageError('--until must not come before --since');
      try {
        const report = await fleet.missed(command.job, window);
        return asJson ? json(report) : missedText(report, await fleet.jobRecord(command.job), now);
      } catch (error) {
        if (error instanceof InvalidLockArgumentError && error.argument === 'from') {
          throw new UsageError(
            `the window holds more than ${MAX_CHECKED_OCCURRENCES} occurrences of ${command.job}; narrow --since`,
          );
        }
        throw error;
      }
    }
    case 'release': {
      const released = await fleet.release(command.key);
      if (asJson) return json({ lock: command.key, released });
      return released
        ? `Released lock ${JSON.stringify(command.key)}: the next occurrence can take it.`
        : `Lock ${JSON.stringify(command.key)} was not held.`;
    }
    case 'pause': {
      const by = command.by ?? whoAmI();
      const paused = await fleet.pause(command.job, by, command.note);
      if (asJson) return json({ job: command.job, paused: true, wasPaused: !paused, by, note: command.note ?? null });
      return `Paused ${command.job} on every replica (by ${by})${paused ? '' : ', again'}: runs in progress go on, later ones are skipped until resume.`;
    }
    case 'trigger': {
      const { job, occurrence, force } = command;
      const started = await fleet.trigger(job, { occurrence, force, by: command.by ?? whoAmI(), timeoutMs });
      if (asJson) return json(started);
      const what = occurrence === undefined ? 'a run now' : `the occurrence ${time(occurrence)}`;
      return `Started ${what} of ${job} on ${started.replica} (${time(started.startedAt)}).`;
    }
    case 'resume': {
      const resumed = await fleet.resume(command.job);
      if (asJson) return json({ job: command.job, paused: false, wasPaused: resumed });
      return resumed ? `Resumed ${command.job} on every replica.` : `${command.job} was not paused.`;
    }
    case 'forget': {
      const forgotten = await fleet.forget(command.job);
      if (asJson) return json({ job: command.job, forgotten });
      return forgotten
        ? `Forgot ${command.job}: it is no longer listed nor checked; a replica that still runs it declares it again when it starts.`
        : `${command.job} was not declared.`;
    }
  }
}

/** The message and exit code of an error. */
function describe(error: unknown): [string, number] {
  if (error instanceof UsageError) return [`${error.message} (see --help)`, 2];
  // Settings the library refuses (a bad --url, REDIS_PORT=abc) are the invocation's fault too.
  if (error instanceof DistributedLockConfigError || error instanceof ConflictingLockOptionsError) {
    return [error.message, 2];
  }
  if (error instanceof RedisUnreachableError || error instanceof DistributedLockError) return [error.message, 1];
  return [`Redis command failed: ${describeError(error)}`, 1];
}

function redact(message: string, secrets: readonly string[]): string {
  return secrets.reduce((text, secret) => text.split(secret).join('***'), message.replace(/\s*\n\s*/g, ' '));
}

function whoAmI(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return hostname();
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Every connection is closed by now; this only guards against a handle left open by mistake.
    setTimeout(() => process.exit(code), 2000).unref();
  });
}

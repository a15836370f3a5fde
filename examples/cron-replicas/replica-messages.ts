/** A replica has booted and says whether it reached Redis. */
export interface ReadyMessage {
  type: 'ready';
  replica: string;
  pid: number;
  connected: boolean;
}

/** A replica ran the job: `tick` is the scheduled second (epoch ms), `startedAt`/`endedAt` epoch ms. */
export interface RunMessage {
  type: 'run';
  replica: string;
  tick: number;
  startedAt: number;
  endedAt: number;
}

export type ReplicaMessage = ReadyMessage | RunMessage;

/** The name the launcher gave this replica process. */
export function replicaName(): string {
  return process.env.REPLICA_NAME ?? `pid-${process.pid}`;
}

/** Sends a message to the launcher: one JSON object per stdout line. */
export function report(message: ReplicaMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** The message on a stdout line, or undefined when the line is ordinary output (e.g. a Nest warning). */
export function parseReplicaMessage(line: string): ReplicaMessage | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const message = JSON.parse(line) as ReplicaMessage;
    return message.type === 'ready' || message.type === 'run' ? message : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The demo job: 200–400 ms of stand-in work, then a report to the launcher. The tick is named from
 * the start time, independently of the lock, so the launcher can check the lock's work.
 */
export async function runDemoJob(startedAt = Date.now()): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 200));
  // Crons fire a few ms after the second they are scheduled for: the nearest second names the tick.
  report({
    type: 'run',
    replica: replicaName(),
    tick: Math.round(startedAt / 1000) * 1000,
    startedAt,
    endedAt: Date.now(),
  });
}

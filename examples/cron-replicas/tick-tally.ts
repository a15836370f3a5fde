import type { RunMessage } from './replica-messages';

export interface TallySummary {
  /** Ticks (seconds) of the observed window that have been counted. */
  ticks: number;
  /** Runs of the job across all replicas on those ticks. */
  executions: number;
  /** Ticks that ran more than once. */
  duplicates: number;
  /** Ticks that no replica ran. */
  missed: number;
  /** Runs per replica name. */
  byReplica: Map<string, number>;
}

/** Collects the runs the replicas report for the ticks of one window of seconds. */
export class TickTally {
  private readonly runs = new Map<number, RunMessage[]>();

  /** `firstTick` and `endTick` are epoch ms on whole seconds; `endTick` is excluded. */
  constructor(
    readonly firstTick: number,
    readonly endTick: number,
  ) {}

  /** Whether a tick belongs to the window. */
  covers(tick: number): boolean {
    return tick >= this.firstTick && tick < this.endTick;
  }

  /** Records a run and returns every run of its tick so far, or undefined when the tick is outside the window. */
  record(run: RunMessage): RunMessage[] | undefined {
    if (!this.covers(run.tick)) return undefined;
    const runs = this.runs.get(run.tick) ?? [];
    runs.push(run);
    this.runs.set(run.tick, runs);
    return runs;
  }

  /** The latest tick of the window with a run, if any. */
  latestRunTick(): number | undefined {
    return this.runs.size === 0 ? undefined : Math.max(...this.runs.keys());
  }

  runsOf(tick: number): RunMessage[] {
    return this.runs.get(tick) ?? [];
  }

  /** Counts the window's ticks before `untilTick` (exclusive). */
  summarize(untilTick = this.endTick): TallySummary {
    const summary: TallySummary = { ticks: 0, executions: 0, duplicates: 0, missed: 0, byReplica: new Map() };
    for (let tick = this.firstTick; tick < Math.min(untilTick, this.endTick); tick += 1000) {
      const runs = this.runsOf(tick);
      summary.ticks++;
      summary.executions += runs.length;
      if (runs.length > 1) summary.duplicates++;
      if (runs.length === 0) summary.missed++;
      for (const run of runs) summary.byReplica.set(run.replica, (summary.byReplica.get(run.replica) ?? 0) + 1);
    }
    return summary;
  }
}

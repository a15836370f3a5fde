import { DistributedLockError } from '../core/errors';
import type { RunTrigger } from '../core/policies/ledger';

/** One run of a job in a simulated fleet, as the simulator saw it end. */
export interface SimulatedRun {
  readonly replica: string;
  readonly job: string;
  /** The occurrence it served (ms since the epoch); undefined for a run that serves none. */
  readonly tick: number | undefined;
  readonly trigger: RunTrigger;
  readonly attempt: number;
  /** `ok`: it completed; `error`: it threw; `lost`: its lock was lost while it ran. */
  readonly outcome: 'ok' | 'error' | 'lost';
  /** It ran without a lock: the store was unreachable and the fail mode was `open` (or the job is not guarded). */
  readonly withoutLock: boolean;
}

/** How each occurrence of a job in a span ran: completed exactly once, or not. */
export interface OccurrenceReport {
  readonly job: string;
  readonly from: Date;
  readonly to: Date;
  /** Every occurrence of the span, oldest first, with its runs (those that completed and those that did not). */
  readonly occurrences: readonly { readonly occurrence: Date; readonly runs: readonly SimulatedRun[] }[];
  /** One line per occurrence that did not complete exactly once; empty when each did. */
  readonly problems: readonly string[];
}

/** Thrown by `FleetSimulator.expectEachOccurrenceOnce`: its message names each occurrence and where it ran. */
export class OccurrenceNotOnceError extends DistributedLockError {
  constructor(readonly report: OccurrenceReport) {
    super(
      `${report.problems.length} of ${report.occurrences.length} occurrence(s) of ${report.job} from ` +
        `${report.from.toISOString()} to ${report.to.toISOString()} did not complete exactly once:\n` +
        report.problems.map((line) => `  ${line}`).join('\n'),
    );
  }
}

const describeRun = (run: SimulatedRun): string =>
  `${run.replica} (${run.trigger}, attempt ${run.attempt}${run.withoutLock ? ', without a lock' : ''}` +
  `${run.outcome === 'ok' ? '' : `, ended ${run.outcome}`})`;

/**
 * Matches the runs of `job` against its `occurrences`: each must have completed (`ok`) exactly
 * once. Runs serving an occurrence outside the list are reported too.
 */
export function checkOccurrences(
  job: string,
  from: number,
  to: number,
  occurrences: readonly number[],
  runs: readonly SimulatedRun[],
): OccurrenceReport {
  const ofJob = runs.filter((run) => run.job === job);
  const expected = new Set(occurrences);
  const problems: string[] = [];
  const report = occurrences.map((tick) => {
    const at = ofJob.filter((run) => run.tick === tick);
    const completed = at.filter((run) => run.outcome === 'ok');
    const when = new Date(tick).toISOString();
    if (completed.length > 1)
      problems.push(`${when} ran ${completed.length} times: ${completed.map(describeRun).join(', ')}`);
    if (completed.length === 0) {
      problems.push(`${when} never ran${at.length ? `: started on ${at.map(describeRun).join(', ')}` : ''}`);
    }
    return { occurrence: new Date(tick), runs: at };
  });
  for (const run of ofJob) {
    if (run.tick !== undefined && run.tick >= from && run.tick <= to && !expected.has(run.tick)) {
      problems.push(
        `${new Date(run.tick).toISOString()} is not an occurrence of the schedule but ran on ${describeRun(run)}`,
      );
    }
  }
  return { job, from: new Date(from), to: new Date(to), occurrences: report, problems };
}

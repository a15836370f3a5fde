import { type ChaosReport, EXCLUSION_RULES, type Execution } from './chaos-checker';
import { CHAOS_JOBS } from './execution-log';

/** Number of violations of checks 1 to 7. */
export function violationCount(report: ChaosReport): number {
  return (
    report.duplicates.violations.length +
    report.duplicates.offSchedule.length +
    report.overlaps.violations.length +
    report.tokenOrder.violations.length +
    report.missedTicks.violations.length +
    report.neverZero.violations.length +
    report.stopCaught.violations.length +
    report.drain.violations.length +
    report.anomalies.length
  );
}

/** The report as markdown: the summary table, the exclusion rules, and the evidence of each violation. */
export function formatReport(report: ChaosReport): string {
  const { executions: e, faults, faultsMidJob: mid } = report;
  const ticksOf = (job: string) => report.ticks.byJob.find((entry) => entry.job === job);
  const rows: [string, string | number][] = [
    ['replicas (clock skew, ms)', report.replicas.map((r) => `${r.id} ${signed(r.skewMs)}`).join(', ')],
    [
      'measured skew (ms)',
      report.replicas.map((r) => `${r.id} ${r.measuredSkewMs === null ? '?' : signed(r.measuredSkewMs)}`).join(', '),
    ],
    ['replica processes started (with restarts)', report.replicas.reduce((sum, r) => sum + r.processes, 0)],
    ['lock TTL / settle (ms)', `${report.run.ttlMs} / ${report.run.settleMs}`],
    ['run length (s)', (report.durationMs / 1000).toFixed(1)],
    [
      'occurrences executed (distinct): every second / every 5 s',
      `${ticksOf(CHAOS_JOBS.everySecond.key)?.executed ?? 0} / ${ticksOf(CHAOS_JOBS.everyFiveSeconds.key)?.executed ?? 0}`,
    ],
    ['executions', e.total],
    [
      '&nbsp;&nbsp;completed / lost-lock / crashed / failed on purpose / error',
      `${e.completed} / ${e.lostLock} / ${e.crashed} / ${e.thrown} / ${e.errors}`,
    ],
    [
      '&nbsp;&nbsp;fail-open (no token), of which outside Redis windows',
      `${e.withoutRedis}, ${e.withoutRedisWhileHealthy}`,
    ],
    ['faults: SIGKILL replica (mid-job)', `${faults['replica-kill']} (${mid['replica-kill']})`],
    ['faults: SIGSTOP replica > TTL (mid-job)', `${faults['replica-stop']} (${mid['replica-stop']})`],
    ['faults: Redis restarted (kill + start)', faults['redis-restart']],
    ['faults: Redis paused (SIGSTOP/SIGCONT)', faults['redis-pause']],
    ['faults: SIGTERM replica, drain + restart (mid-job)', `${faults['replica-term']} (${mid['replica-term']})`],
    ['faults: event loop blocked across an every-5 s occurrence', faults['late-timer']],
    ['faults: every replica SIGKILLed across an every-5 s occurrence, then restarted', faults['fleet-kill'] ?? 0],
    ['faults: clock skew (replicas skewed)', report.replicas.filter((r) => r.skewMs !== 0).length],
    ['(1) duplicate occurrences while Redis healthy', report.duplicates.violations.length],
    ['&nbsp;&nbsp;duplicate occurrences in Redis windows (excused)', report.duplicates.excused],
    ['&nbsp;&nbsp;occurrences run again as a new attempt (retry, recovery)', report.duplicates.reruns],
    ['(1) ticks off their job schedule', report.duplicates.offSchedule.length],
    ['(2) overlaps while Redis healthy', report.overlaps.violations.length],
    ['&nbsp;&nbsp;fenced overlaps (lost-lock holder, lower token)', report.overlaps.fenced.length],
    ['&nbsp;&nbsp;overlapping pairs in Redis windows (excused)', report.overlaps.excused],
    ['(3) fencing-token order violations', report.tokenOrder.violations.length],
    [
      '(4) missed every-second occurrences while healthy / checked',
      `${report.missedTicks.violations.length} / ${report.ticks.byJob.find((j) => j.job === CHAOS_JOBS.everySecond.key)?.checked ?? 0}`,
    ],
    [
      '(4b) every-5 s occurrences without a run or a reason / checked (fault windows included)',
      `${report.neverZero.violations.length} / ${report.neverZero.checked}`,
    ],
    [
      '&nbsp;&nbsp;completed, by what started the completed run',
      `${report.neverZero.completed} (${Object.entries(report.neverZero.byTrigger)
        .map(([trigger, n]) => `${trigger} ${n}`)
        .join(', ')})`,
    ],
    [
      '&nbsp;&nbsp;reasons: Redis restart (data lost) / attempts exhausted / retry window closed',
      `${report.neverZero.redisRestart} / ${report.neverZero.attemptsExhausted} / ${report.neverZero.retryWindowClosed}`,
    ],
    [
      '(5) SIGSTOPped executions not ending lost-lock / checked',
      `${report.stopCaught.violations.length} / ${report.stopCaught.checked}`,
    ],
    [
      '&nbsp;&nbsp;slowest notice of a lost lock after SIGCONT (ms)',
      report.stopCaught.maxNoticeDelayMs === null ? '-' : Math.round(report.stopCaught.maxNoticeDelayMs),
    ],
    ['lost-lock executions', e.lostLock],
    ['&nbsp;&nbsp;of which no fault explains', e.lostLockUnexplained],
    ['(6) anomalies', report.anomalies.length],
    [
      '(7) drain violations / executions in flight at SIGTERM',
      `${report.drain.violations.length} / ${report.drain.inFlight}`,
    ],
    [
      '&nbsp;&nbsp;slowest exit after SIGTERM (ms)',
      report.drain.maxExitMs === null ? '-' : Math.round(report.drain.maxExitMs),
    ],
  ];
  const cells = rows.map(([metric, value]) => [metric, String(value)]);
  const widths = [0, 1].map((column) => Math.max(...[['metric', 'value'], ...cells].map((row) => row[column].length)));
  const row = (pair: string[]) => `| ${pair.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  const lines = [
    row(['metric', 'value']),
    row(widths.map((width) => '-'.repeat(width))),
    ...cells.map(row),
    '',
    `Verdict: ${violationCount(report) === 0 ? 'no violation' : `${violationCount(report)} violation(s)`}.`,
    '',
    'Rules:',
    '',
    ...EXCLUSION_RULES.map((rule) => `- ${rule}`),
  ];
  const evidence = describeViolations(report);
  if (evidence.length) lines.push('', 'Violations:', '', ...evidence);
  return lines.join('\n');
}

function describeViolations(report: ChaosReport): string[] {
  const show = (execution: Execution) => `    ${JSON.stringify(execution)}`;
  const near = (time: number) =>
    report.windows
      .filter((window) => time >= window.fault.start - 5_000 && time <= window.end + 5_000)
      .map((window) => `    fault ${JSON.stringify(window.fault)}`);
  const out: string[] = [];
  for (const group of report.duplicates.violations) {
    out.push(
      `- (1) occurrence ${iso(group[0].occurrence!)} of ${group[0].job} executed ${group.length} times:`,
      ...group.map(show),
      ...near(group[0].start),
    );
  }
  for (const execution of report.duplicates.offSchedule) {
    out.push(`- (1) tick ${iso(execution.tick!)} is not on the schedule of ${execution.job}:`, show(execution));
  }
  for (const [first, second] of report.overlaps.violations) {
    out.push('- (2) overlap:', show(first), show(second), ...near(second.start));
  }
  for (const [first, second] of report.tokenOrder.violations) {
    out.push('- (3) token not increasing:', show(first), show(second), ...near(second.start));
  }
  for (const { job, tick } of report.missedTicks.violations) {
    out.push(`- (4) occurrence ${iso(tick)} of ${job} was never executed`);
  }
  for (const { tick, executions } of report.neverZero.violations) {
    const due = executions.length === 0 ? [] : executions.map(show);
    out.push(`- (4b) occurrence ${iso(tick)} of the every-5 s job has no completed run and no reason:`, ...due);
  }
  for (const execution of report.stopCaught.violations) {
    out.push('- (5) frozen past its TTL but did not end lost-lock:', show(execution), ...near(execution.start));
  }
  for (const anomaly of report.anomalies) out.push(`- (6) ${anomaly}`);
  for (const { reason, fault, execution } of report.drain.violations) {
    out.push(`- (7) ${reason}:`, ...(execution ? [show(execution)] : []), `    fault ${JSON.stringify(fault)}`);
  }
  return out;
}

function iso(time: number): string {
  return `${time} (${new Date(time).toISOString()})`;
}

function signed(value: number): string {
  return value > 0 ? `+${value}` : String(value);
}

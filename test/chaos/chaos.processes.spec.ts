import { join } from 'node:path';
import { CAN_CONTROL_REDIS } from '../support/redis-server';
import { type ChaosReport, checkRun } from './chaos-checker';
import { formatReport } from './chaos-report';
import { CHAOS_JOBS } from './execution-log';
import { buildReplicaApp, CHAOS_DIR } from './chaos-build';
import { FaultDriver } from './fault-driver';
import { findLibfaketime } from './faketime';

// The short chaos run: 4 replica processes with clocks skewed by -0.9, -0.3, +0.4 and +1.0 s,
// one fault of each kind (about 70 s of faults, the whole fleet SIGKILLed last), a seeded fifth
// of the every-5-seconds job's attempts failing on purpose, then the checks of chaos-checker.ts.
// The long run is run-chaos.ts. Logs stay in .chaos/runs/<time>-short/. CHAOS_SEED=<n> replays
// other fault durations and targets (seed 1 by default).
const seed = Number(process.env.CHAOS_SEED ?? 1);
const describeWithOwnRedis = CAN_CONTROL_REDIS ? describe : describe.skip;

describeWithOwnRedis(
  'four replicas of a Nest app under SIGKILL, SIGSTOP, SIGTERM, Redis faults, a late timer and a whole-fleet SIGKILL',
  () => {
    let report: ChaosReport;

    beforeAll(async () => {
      buildReplicaApp();
      const runDir = join(CHAOS_DIR, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-short`);
      await new FaultDriver({
        replicas: 4,
        faultPhaseMs: 0, // one cycle: each kind of fault once
        order: 'fixed',
        seed,
        healthyGapMs: 1_500, // seven faults in about 80 s
        gapJitterMs: 0,
        runDir,
        command: `CHAOS_SEED=${seed} npm run test:processes -- test/chaos/chaos.processes.spec.ts`,
      }).run();
      report = checkRun(runDir);
      console.log(`${runDir}\n\n${formatReport(report)}`);
    }, 200_000);

    it('runs each replica with the clock skew it was given (libfaketime)', () => {
      expect(findLibfaketime()).not.toBeNull(); // Debian package "faketime"
      for (const replica of report.replicas) {
        expect(replica.skewMs).not.toBe(0);
        expect(Math.abs(replica.measuredSkewMs! - replica.skewMs)).toBeLessThanOrEqual(100);
      }
    });

    it('injects every kind of fault, hitting the replica in the middle of its job', () => {
      expect(report.faults).toEqual({
        'replica-kill': 1,
        'replica-stop': 1,
        'redis-restart': 1,
        'redis-pause': 1,
        'replica-term': 1,
        'late-timer': 1,
        'fleet-kill': 1,
      });
      expect(report.faultsMidJob).toEqual({ 'replica-kill': 1, 'replica-stop': 1, 'replica-term': 1 });
      expect(report.executions.crashed).toBeGreaterThanOrEqual(1);
    });

    it('(1) runs no occurrence of a job twice while Redis is healthy', () => {
      expect(report.duplicates.violations).toEqual([]);
    });

    it('(1) names every firing after its scheduled occurrence, also one its blocked event loop fired late', () => {
      expect(report.duplicates.offSchedule).toEqual([]);
    });

    it('(2) lets executions overlap only when the earlier one lost its lock and has the lower token', () => {
      expect(report.overlaps.violations).toEqual([]);
      // The replica frozen mid-job is still "running" when the next holder starts: fenced, not hidden.
      expect(report.overlaps.fenced.length).toBeGreaterThanOrEqual(1);
    });

    it('(3) hands out fencing tokens in increasing order of start, across a Redis restart', () => {
      expect(report.tokenOrder.violations).toEqual([]);
    });

    it('(4) runs every occurrence of the every-second job while Redis is healthy and a replica is alive', () => {
      const checked = (job: string) => report.ticks.byJob.find((entry) => entry.job === job)?.checked ?? 0;
      expect(checked(CHAOS_JOBS.everySecond.key)).toBeGreaterThanOrEqual(10);
      expect(report.missedTicks.violations).toEqual([]);
    });

    it('(4b) never zero: every every-5-seconds occurrence, fault windows included, completes or has a stated reason', () => {
      expect(report.neverZero.checked).toBeGreaterThanOrEqual(10);
      expect(report.neverZero.violations).toEqual([]);
      // The policies did the work: occurrences completed by catch-up, retry or recovery.
      const { schedule = 0, ...others } = report.neverZero.byTrigger;
      expect(schedule).toBeGreaterThanOrEqual(1);
      expect(Object.values(others).reduce((sum, n) => sum + n, 0)).toBeGreaterThanOrEqual(2);
    });

    it('(5) tells a job frozen past its TTL that its lock is lost, at its next check', () => {
      expect(report.stopCaught.checked).toBeGreaterThanOrEqual(1);
      expect(report.stopCaught.violations).toEqual([]);
    });

    it('(6) sees no replica crash by itself and no job fail otherwise', () => {
      expect(report.anomalies).toEqual([]);
    });

    it('(7) lets a SIGTERMed replica finish its run, holding the lock, take no new one, and exit by itself', () => {
      expect(report.drain.inFlight).toBeGreaterThanOrEqual(1);
      expect(report.drain.violations).toEqual([]);
    });
  },
);

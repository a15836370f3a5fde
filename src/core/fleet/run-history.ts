import type { Cluster, Redis } from 'ioredis';
import { parseRunRecord, type RunRecord } from './fleet-records';

/** A run record and its stream entry id (`<ms>-<seq>`, Redis time of the write). */
export type RecordedRun = RunRecord & { readonly id: string };

/** Entries read per XRANGE / XREVRANGE call: no single reply grows with the stream. */
const PAGE = 200;

/** The largest sequence number of a stream id. */
const MAX_SEQUENCE = 18446744073709551615n;

type Entries = [id: string, fields: string[]][];

/**
 * The newest `limit` runs of `job` in the stream `runsKey`, newest first. Jobs sharing a lock name
 * share its stream, so the stream is read page by page until enough runs of `job` are found.
 */
export async function newestRuns(
  client: Redis | Cluster,
  runsKey: string,
  job: string,
  limit: number,
): Promise<RecordedRun[]> {
  const found: RecordedRun[] = [];
  let end: string | undefined = '+';
  while (end !== undefined && found.length < limit) {
    const page: Entries = await client.xrevrange(runsKey, end, '-', 'COUNT', PAGE);
    for (const [id, fields] of page) {
      const run = parseRunRecord(fields);
      if (run.job === job && found.length < limit) found.push({ ...run, id });
    }
    end = page.length < PAGE ? undefined : idBefore(page[page.length - 1][0]);
  }
  return found;
}

/** The runs of `job` written at or after `sinceMs` (Redis time), oldest first. */
export async function runsWrittenSince(
  client: Redis | Cluster,
  runsKey: string,
  job: string,
  sinceMs: number,
): Promise<RecordedRun[]> {
  const found: RecordedRun[] = [];
  let start: string | undefined = String(Math.max(0, Math.floor(sinceMs)));
  while (start !== undefined) {
    const page: Entries = await client.xrange(runsKey, start, '+', 'COUNT', PAGE);
    for (const [id, fields] of page) {
      const run = parseRunRecord(fields);
      if (run.job === job) found.push({ ...run, id });
    }
    start = page.length < PAGE ? undefined : idAfter(page[page.length - 1][0]);
  }
  return found;
}

/**
 * Up to when (ms, Redis time) the stream may have lost records: its cap trimmed them, or it
 * expired (`retentionMs` after its last record) and was started again. Trimming removes the
 * oldest entries, so once more entries were added than remain, everything before the first entry
 * may be gone. A stream that exists since its first entry F may have had an earlier life, ending
 * at F - retentionMs at the latest; a missing stream may have expired. Redis before 7.0 does not
 * count the entries added: the first entry is then the bound.
 */
export async function historyLostUntil(
  client: Redis | Cluster,
  runsKey: string,
  retentionMs: number,
  now: number,
): Promise<number> {
  let reply: unknown[];
  try {
    reply = (await client.xinfo('STREAM', runsKey)) as unknown[];
  } catch (error) {
    if (/no such key/i.test((error as Error).message)) return now - retentionMs;
    throw error;
  }
  const info = new Map<string, unknown>();
  for (let i = 0; i + 1 < reply.length; i += 2) info.set(String(reply[i]), reply[i + 1]);
  const first = info.get('first-entry') as [string, string[]] | null | undefined;
  const firstMs = first ? idMs(first[0]) : now;
  const added = info.get('entries-added');
  if (added === undefined) return firstMs;
  const maxDeleted = info.get('max-deleted-entry-id');
  const trimmed = Number(added) > Number(info.get('length'));
  return Math.max(
    firstMs - retentionMs,
    trimmed ? firstMs : -Infinity,
    typeof maxDeleted === 'string' ? idMs(maxDeleted) : -Infinity,
  );
}

function idMs(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** The greatest id below `id` (Redis 6.0 has no exclusive ranges). */
function idBefore(id: string): string | undefined {
  const [ms, seq] = id.split('-').map(BigInt);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-${MAX_SEQUENCE}` : undefined;
}

/** The smallest id above `id`. */
function idAfter(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt);
  return seq < MAX_SEQUENCE ? `${ms}-${seq + 1n}` : `${ms + 1n}-0`;
}

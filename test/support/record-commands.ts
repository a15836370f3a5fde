import Redis from 'ioredis';

/** A command Redis ran, as MONITOR reports it: `lua` as the source for a script's own calls. */
export interface RecordedCommand {
  source: 'client' | 'lua';
  words: string[];
}

/**
 * Runs `work` and returns, in order, the commands Redis ran meanwhile that mention `needle` in
 * any word (a key, usually), taken from MONITOR. Other clients' traffic on a shared server is
 * filtered out by the needle.
 */
export async function recordCommands(
  url: string,
  needle: string,
  work: () => Promise<void>,
): Promise<RecordedCommand[]> {
  const marker = `record-commands-done:${needle}:${Math.random()}`;
  const monitorClient = new Redis(url, { lazyConnect: true });
  const markerClient = new Redis(url);
  const seen: RecordedCommand[] = [];
  try {
    const monitor = await monitorClient.monitor();
    let markerSeen!: () => void;
    const done = new Promise<void>((resolve) => (markerSeen = resolve));
    monitor.on('monitor', (_time: string, words: string[], source: string) => {
      if (words.includes(marker)) markerSeen();
      else if (words.some((word) => word.includes(needle))) {
        seen.push({ source: source === 'lua' ? 'lua' : 'client', words: [words[0].toLowerCase(), ...words.slice(1)] });
      }
    });
    await work();
    await markerClient.echo(marker); // MONITOR reports in order: once this shows, all of `work` has
    await done;
    monitor.disconnect();
    return seen;
  } finally {
    monitorClient.disconnect();
    markerClient.disconnect();
  }
}

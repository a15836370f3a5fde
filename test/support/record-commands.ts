import Redis from 'ioredis';
import { connect, type Socket } from 'node:net';

/** A command Redis ran, as MONITOR reports it: `lua` as the source for a script's own calls. */
export interface RecordedCommand {
  source: 'client' | 'lua';
  words: string[];
}

/**
 * Runs `work` and returns, in order, the commands Redis ran meanwhile that mention `needle` in
 * any word (a key, usually), taken from MONITOR. Other clients' traffic on a shared server is
 * filtered out by the needle.
 *
 * MONITOR is read on a plain socket: ioredis's `monitor()` takes a command that Redis reports in
 * the same read as MONITOR's OK (another client's ready check, say) for a reply to nothing, and
 * throws "Command queue state error".
 */
export async function recordCommands(
  url: string,
  needle: string,
  work: () => Promise<void>,
): Promise<RecordedCommand[]> {
  const marker = `record-commands-done:${needle}:${Math.random()}`;
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const markerClient = new Redis(url, { lazyConnect: true });
  const seen: RecordedCommand[] = [];
  try {
    await markerClient.connect(); // before MONITOR: its own connection's commands are not the work's
    let markerSeen!: () => void;
    const done = new Promise<void>((resolve) => (markerSeen = resolve));
    await monitor(socket, (command) => {
      if (command.words.includes(marker)) markerSeen();
      else if (command.words.some((word) => word.includes(needle))) {
        seen.push({ ...command, words: [command.words[0].toLowerCase(), ...command.words.slice(1)] });
      }
    });
    await work();
    await markerClient.echo(marker); // MONITOR reports in order: once this shows, all of `work` has
    await done;
    return seen;
  } finally {
    socket.destroy();
    markerClient.disconnect();
  }
}

/** Sends MONITOR on `socket`; resolves once Redis said OK, then calls `onCommand` for each command reported. */
function monitor(socket: Socket, onCommand: (command: RecordedCommand) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    socket.once('error', reject);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line === '+OK') resolve();
        else if (line.startsWith('-')) reject(new Error(`MONITOR refused: ${line.slice(1)}`));
        else {
          const command = parseMonitorLine(line);
          if (command) onCommand(command);
        }
      }
    });
    socket.write('MONITOR\r\n');
  });
}

/** `+1700000000.123456 [0 127.0.0.1:6379] "set" "key" "va\"lue"` (or `[0 lua]`) as the command it reports. */
function parseMonitorLine(line: string): RecordedCommand | undefined {
  const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
  if (!match) return undefined;
  const words = [...match[2].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(([, quoted]) => unquote(quoted));
  return { source: match[1] === 'lua' ? 'lua' : 'client', words };
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };

/** Undoes Redis's quoting of a MONITOR word (sdscatrepr): `\"`, `\\`, `\n`, …, `\xHH`. */
function unquote(quoted: string): string {
  return quoted.replace(/\\(x[0-9a-f]{2}|.)/g, (_, escape: string) =>
    escape.length === 3 ? String.fromCharCode(parseInt(escape.slice(1), 16)) : (ESCAPES[escape] ?? escape),
  );
}

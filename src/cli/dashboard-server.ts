import { createServer, type IncomingMessage } from 'node:http';
import type { FleetInspector } from '../core/fleet/fleet-inspector';
import { DashboardHandler } from '../dashboard/dashboard-handler';

/** The largest request body read (an action's JSON). */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * Serves the dashboard, read-only, at `http://host:port/` until SIGINT or SIGTERM; resolves the
 * exit code then. `host` is 127.0.0.1 unless the command line says otherwise.
 */
export function serveDashboard(
  fleet: FleetInspector,
  at: { readonly host: string; readonly port: number },
  say: (line: string) => void,
): Promise<number> {
  const handler = new DashboardHandler(() => fleet, { base: '' });
  const hosts = new Set<string>();
  const server = createServer((request, response) => {
    // Only under the names it was reached by on this machine: a page whose DNS name is rebound to
    // 127.0.0.1 sends its own name as Host, and is refused.
    if (!hosts.has(request.headers.host ?? '')) {
      response.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' }).end('Misdirected request.\n');
      return;
    }
    void readBody(request).then(async (body) => {
      const path = (request.url ?? '/').split('?')[0].replace(/^\/+/, '');
      const answer = await handler.handle({
        method: request.method ?? 'GET',
        path,
        headers: request.headers,
        body,
        native: request,
      });
      response.writeHead(answer.status, answer.headers).end(answer.body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : at.port;
      const host = at.host.includes(':') ? `[${at.host}]` : at.host;
      for (const name of [host, 'localhost', '127.0.0.1', '[::1]']) hosts.add(`${name}:${port}`);
      say(`Dashboard (read-only) at http://${host}:${port}/ — Ctrl+C stops it.`);
      const stop = (): void => {
        process.off('SIGINT', stop).off('SIGTERM', stop);
        server.close(() => resolve(0));
        server.closeAllConnections();
      };
      process.on('SIGINT', stop).on('SIGTERM', stop);
    });
  });
}

/** A POST's JSON body (undefined for none, or for one that is not JSON or too long). */
function readBody(request: IncomingMessage): Promise<unknown> {
  if (request.method !== 'POST') return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        resolve(size > MAX_BODY_BYTES ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        resolve(undefined);
      }
    });
    request.on('error', () => resolve(undefined));
  });
}

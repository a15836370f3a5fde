import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a free loopback port that forwards to `target` and delays what the client sends
 * by `delayMs` (settable while it runs), as a slow link to one Redis node would.
 */
export class DelayProxy {
  delayMs: number;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    delayMs: number,
  ) {
    this.delayMs = delayMs;
  }

  static async start(target: { host: string; port: number }, delayMs = 0): Promise<DelayProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new DelayProxy(server, (server.address() as { port: number }).port, delayMs);
    server.on('connection', (client) => proxy.forward(client, target));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private forward(client: Socket, target: { host: string; port: number }): void {
    const upstream = createConnection(target);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => (socket === client ? upstream : client).destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk) => {
      if (this.delayMs === 0) upstream.write(chunk);
      else setTimeout(() => upstream.writable && upstream.write(chunk), this.delayMs);
    });
    upstream.on('data', (chunk) => client.writable && client.write(chunk));
  }
}

import { describeError, DistributedLockError, InvalidLockArgumentError } from '../core/errors';
import type { FleetInspector } from '../core/fleet/fleet-inspector';
import { DASHBOARD_CSS, DASHBOARD_SCRIPT, dashboardPage } from './dashboard-page';
import { type DashboardSnapshot, readSnapshot } from './dashboard-snapshot';

/** What an operator can do from the page, besides viewing it. */
export const DASHBOARD_ACTIONS = ['pause', 'resume', 'release', 'trigger', 'fill'] as const;
export type DashboardAction = (typeof DASHBOARD_ACTIONS)[number];

/**
 * Decides whether `request` (the framework's own request object) may view the page (`'view'`) or
 * take `action`, and says who acts: a name (recorded as `by`), or false / undefined to refuse.
 */
export type DashboardAuthorize = (
  request: unknown,
  action: 'view' | DashboardAction,
) => string | false | undefined | Promise<string | false | undefined>;

/** A request as the dashboard reads it, whichever server received it. */
export interface DashboardRequest {
  readonly method: string;
  /** The path below the dashboard's base: '', 'app.js', 'app.css', 'data' or 'actions'. */
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body of a POST. */
  readonly body: unknown;
  /** The framework's request object, handed to `authorize`. */
  readonly native: unknown;
}

export interface DashboardResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface DashboardHandlerOptions {
  /** The URL path the dashboard is mounted at, e.g. `/locks`. */
  readonly base: string;
  /** Without it, the page is read-only and open to whoever reaches it. */
  readonly authorize?: DashboardAuthorize;
  /** How long one read of the fleet serves every viewer. @default 3000 */
  readonly refreshMs?: number;
  /**
   * Origins (`https://ops.example.com`) whose pages may post actions, besides the host the request
   * names (`Host`, or `X-Forwarded-Host` behind a proxy). @default []
   */
  readonly allowedOrigins?: readonly string[];
}

/** Sent with every action by the page: a cross-site form cannot set it without a CORS preflight. */
export const ACTION_HEADER = 'x-dashboard-action';

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The dashboard, framework-agnostic: the page, its script and style, the fleet's snapshot (one
 * bounded read shared by every viewer for `refreshMs`), and the actions `authorize` allows. The
 * Nest module and the CLI's standalone server both hand their requests to it.
 */
export class DashboardHandler {
  private shared: { readonly at: number; readonly read: Promise<DashboardSnapshot> } | undefined;
  private readonly refreshMs: number;

  constructor(
    private readonly fleet: () => FleetInspector,
    private readonly options: DashboardHandlerOptions,
  ) {
    this.refreshMs = options.refreshMs ?? 3_000;
    if (!Number.isSafeInteger(this.refreshMs) || this.refreshMs < 100) {
      throw new InvalidLockArgumentError('refreshMs', options.refreshMs, 'an integer of at least 100 ms');
    }
  }

  async handle(request: DashboardRequest): Promise<DashboardResponse> {
    try {
      return await this.route(request);
    } catch (error) {
      const status = error instanceof InvalidLockArgumentError || error instanceof DistributedLockError ? 409 : 500;
      return json(status, { error: describeError(error) });
    }
  }

  private async route(request: DashboardRequest): Promise<DashboardResponse> {
    const { method, path } = request;
    if (method === 'GET' && path === 'app.js') return asset('text/javascript', DASHBOARD_SCRIPT);
    if (method === 'GET' && path === 'app.css') return asset('text/css', DASHBOARD_CSS);
    const viewer = await this.who(request, 'view');
    if (viewer === undefined) return json(403, { error: 'Not allowed to view the dashboard.' });
    if (method === 'GET' && path === '') {
      return {
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS },
        body: dashboardPage(this.options.base),
      };
    }
    if (method === 'GET' && path === 'data') {
      const allowed = await this.allowedActions(request);
      return json(200, { ...(await this.snapshot()), actions: allowed });
    }
    if (method === 'POST' && path === 'actions') return this.act(request);
    return json(404, { error: 'Not found.' });
  }

  private async act(request: DashboardRequest): Promise<DashboardResponse> {
    const crossSite = crossSiteReason(request, this.options.allowedOrigins ?? []);
    if (crossSite) return json(403, { error: crossSite });
    const body = (request.body ?? {}) as {
      action?: unknown;
      job?: unknown;
      note?: unknown;
      key?: unknown;
      occurrence?: unknown;
    };
    const action = DASHBOARD_ACTIONS.find((known) => known === body.action);
    if (!action) return json(400, { error: `Unknown action ${JSON.stringify(body.action)}.` });
    const by = await this.who(request, action);
    if (by === undefined) return json(403, { error: `Not allowed to ${action}.` });
    const fleet = this.fleet();
    const job = String(body.job ?? '');
    const done = await perform(fleet, action, job, by, body);
    this.shared = undefined; // the next read shows what the action did
    return json(200, { done, by });
  }

  private async who(request: DashboardRequest, action: 'view' | DashboardAction): Promise<string | undefined> {
    const { authorize } = this.options;
    if (!authorize) return action === 'view' ? '' : undefined;
    const who = await authorize(request.native, action);
    return typeof who === 'string' ? who : undefined;
  }

  private async allowedActions(request: DashboardRequest): Promise<DashboardAction[]> {
    if (!this.options.authorize) return [];
    const allowed = await Promise.all(DASHBOARD_ACTIONS.map((action) => this.who(request, action)));
    return DASHBOARD_ACTIONS.filter((_, i) => allowed[i] !== undefined);
  }

  /** The snapshot, read at most once per `refreshMs` whoever asks. */
  private snapshot(): Promise<DashboardSnapshot> {
    const now = Date.now();
    if (!this.shared || now - this.shared.at >= this.refreshMs) {
      const read = readSnapshot(this.fleet(), now);
      this.shared = { at: now, read };
      read.catch(() => {
        if (this.shared?.read === read) this.shared = undefined; // a failed read is not shared
      });
    }
    return this.shared.read;
  }
}

async function perform(
  fleet: FleetInspector,
  action: DashboardAction,
  job: string,
  by: string,
  body: { note?: unknown; key?: unknown; occurrence?: unknown },
): Promise<unknown> {
  switch (action) {
    case 'pause':
      return fleet.pause(job, by, typeof body.note === 'string' && body.note !== '' ? body.note : undefined);
    case 'resume':
      return fleet.resume(job);
    case 'release':
      return fleet.release(String(body.key ?? ''));
    case 'trigger':
      return fleet.trigger(job, { by });
    case 'fill':
      return fleet.trigger(job, { by, occurrence: Number(body.occurrence) });
  }
}

/**
 * Why a POST looks cross-site: no action header (a cross-site page cannot send it without a CORS
 * preflight, which the dashboard does not answer), not JSON, or an `Origin` that is neither the
 * host the request names (`Host`, `X-Forwarded-Host`) nor an allowed origin.
 */
function crossSiteReason({ headers }: DashboardRequest, allowedOrigins: readonly string[]): string | undefined {
  const header = (name: string) => [headers[name]].flat()[0];
  if (header(ACTION_HEADER) !== '1') return `Refused: an action needs the ${ACTION_HEADER} header the page sends.`;
  if (!/^application\/json\b/.test(header('content-type') ?? '')) return 'Refused: an action is a JSON request.';
  const origin = header('origin');
  if (origin === undefined || allowedOrigins.includes(origin)) return undefined;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return 'Refused: the Origin header is not a URL.';
  }
  const hosts = [header('host'), header('x-forwarded-host')?.split(',')[0].trim()];
  return hosts.includes(originHost) ? undefined : 'Refused: a cross-site request (its Origin is not this host).';
}

function json(status: number, value: unknown): DashboardResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS },
    body: JSON.stringify(value),
  };
}

function asset(type: string, body: string): DashboardResponse {
  return {
    status: 200,
    headers: {
      'content-type': `${type}; charset=utf-8`,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    },
    body,
  };
}

import { Controller, type DynamicModule, Get, Inject, Module, Post, Req, Res } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InvalidLockArgumentError } from '../core/errors';
import { DistributedLockService } from '../distributed-lock.service';
import { type DashboardAuthorize, DashboardHandler, type DashboardResponse } from './dashboard-handler';

/** Options of `DistributedLockDashboardModule.forRoot`. */
export interface DistributedLockDashboardOptions {
  /** Where the page is served in the app. @default '/locks' */
  path?: string;
  /**
   * Decides, per request, viewing (`'view'`) and each action (`'pause'`, `'resume'`, `'release'`,
   * `'trigger'`, `'fill'`), returning who acts (recorded as `by`) or false. Without it the page is
   * read-only and open to whoever reaches the path: guard it as you guard the app's other routes.
   */
  authorize?: DashboardAuthorize;
  /** How long one read of the fleet serves every viewer, in ms. @default 3000 */
  refreshMs?: number;
  /**
   * Origins whose pages may post actions besides the host a request names (`Host`, or
   * `X-Forwarded-Host` behind a proxy), e.g. `['https://ops.example.com']`. @default []
   */
  allowedOrigins?: string[];
}

type Native = { headers: Record<string, string | string[] | undefined>; body?: unknown };

/**
 * Mounts the operators' dashboard at `path` of the app (Express or Fastify): each job's schedule,
 * next occurrence, last run, pause and overdue state, a timeline of the last six hours per job and
 * replica, the locks held and the live replicas. Actions (pause with a note, resume, release, run
 * now, fill a missed occurrence) exist only where `authorize` allows them. Import it beside
 * `DistributedLockModule`.
 *
 * @example
 * DistributedLockDashboardModule.forRoot({
 *   path: '/ops/locks',
 *   authorize: (request, action) => (isOperator(request) ? operatorName(request) : action === 'view' && 'viewer'),
 * })
 */
@Module({})
export class DistributedLockDashboardModule {
  static forRoot(options: DistributedLockDashboardOptions = {}): DynamicModule {
    const path = options.path ?? '/locks';
    if (typeof path !== 'string' || !/^\/[\w\-./]*$/.test(path)) {
      throw new InvalidLockArgumentError('path', path, "a URL path such as '/locks'");
    }
    if (options.authorize !== undefined && typeof options.authorize !== 'function') {
      throw new InvalidLockArgumentError('authorize', options.authorize, 'a function (request, action) => who | false');
    }
    const base = path.replace(/\/+$/, '') || '';

    @Controller(base)
    class DashboardController {
      private readonly handler: DashboardHandler;

      constructor(
        @Inject(DistributedLockService) locks: DistributedLockService,
        @Inject(HttpAdapterHost) private readonly adapter: HttpAdapterHost,
      ) {
        this.handler = new DashboardHandler(() => locks.fleet, {
          base,
          authorize: options.authorize,
          refreshMs: options.refreshMs,
          allowedOrigins: options.allowedOrigins,
        });
      }

      @Get()
      page(@Req() request: Native, @Res() response: unknown): Promise<void> {
        return this.serve('GET', '', request, response);
      }

      @Get('app.js')
      script(@Req() request: Native, @Res() response: unknown): Promise<void> {
        return this.serve('GET', 'app.js', request, response);
      }

      @Get('app.css')
      style(@Req() request: Native, @Res() response: unknown): Promise<void> {
        return this.serve('GET', 'app.css', request, response);
      }

      @Get('data')
      data(@Req() request: Native, @Res() response: unknown): Promise<void> {
        return this.serve('GET', 'data', request, response);
      }

      @Post('actions')
      act(@Req() request: Native, @Res() response: unknown): Promise<void> {
        return this.serve('POST', 'actions', request, response);
      }

      private async serve(method: string, at: string, request: Native, response: unknown): Promise<void> {
        const answer: DashboardResponse = await this.handler.handle({
          method,
          path: at,
          headers: request.headers,
          body: request.body,
          native: request,
        });
        const http = this.adapter.httpAdapter;
        for (const [name, value] of Object.entries(answer.headers)) http.setHeader(response, name, value);
        http.reply(response, answer.body, answer.status);
      }
    }

    return { module: DistributedLockDashboardModule, controllers: [DashboardController] };
  }
}

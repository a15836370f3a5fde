// The dashboard's page: a static shell, a stylesheet and a script, all served by the app itself
// (no CDN). The script builds every element with textContent: no value from Redis is ever parsed
// as HTML.

/** The page shell; `base` is where the dashboard is mounted (the app's own setting, escaped anyway). */
export function dashboardPage(base: string): string {
  const at = escapeAttribute(base);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Scheduled jobs · dpa-distributed-lock-cron</title>
<link rel="stylesheet" href="${at}/app.css">
<script src="${at}/app.js" defer></script>
</head>
<body data-base="${at}">
<header><h1>Scheduled jobs</h1><p id="updated" aria-live="polite">Loading…</p></header>
<main>
<p id="problem" role="alert" hidden></p>
<section aria-labelledby="jobs-title"><h2 id="jobs-title">Jobs</h2>
<p id="note-bar" hidden><label for="pause-note">Note for a pause</label> <input id="pause-note" type="text" maxlength="1000"></p>
<table id="jobs"><thead><tr><th scope="col">Job</th><th scope="col">Schedule</th><th scope="col">Next</th><th scope="col">Last run</th><th scope="col">Paused</th><th scope="col">Overdue</th><th scope="col">Actions</th></tr></thead><tbody></tbody></table>
</section>
<section id="drift-section" aria-labelledby="drift-title" hidden><h2 id="drift-title">Schedule drift</h2>
<p>Live replicas run different definitions of these jobs; the newest runs them, the others skip (reason drift).</p>
<table id="drift"><thead><tr><th scope="col">Job</th><th scope="col">Schedule</th><th scope="col">Replicas</th><th scope="col">Runs it</th></tr></thead><tbody></tbody></table>
</section>
<section aria-labelledby="timeline-title"><h2 id="timeline-title">Timeline</h2>
<p>Runs by replica, oldest on the left: ok, error, lost, abandoned; C catch-up, R retry, X recovery, M manual. Missed occurrences on their own line.</p>
<div id="timeline"></div>
</section>
<section aria-labelledby="locks-title"><h2 id="locks-title">Locks held</h2>
<table id="locks"><thead><tr><th scope="col">Lock</th><th scope="col">Holder</th><th scope="col">Since</th><th scope="col">TTL left</th><th scope="col">Fencing token</th><th scope="col">Actions</th></tr></thead><tbody></tbody></table>
</section>
<section aria-labelledby="replicas-title"><h2 id="replicas-title">Live replicas</h2>
<p>Replicas taking manual triggers (manualTriggers), with their clock's offset from Redis's.</p>
<table id="replicas"><thead><tr><th scope="col">Replica</th><th scope="col">Jobs</th><th scope="col">Clock offset</th></tr></thead><tbody></tbody></table>
</section>
</main>
</body>
</html>
`;
}

function escapeAttribute(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const DASHBOARD_CSS = `
body { font: 15px/1.4 system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 0 1.5rem 2rem; }
h1 { font-size: 1.5rem; margin: 1rem 0 0; } h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ccc; vertical-align: top; }
th { background: #f2f2f2; } #problem { color: #8b0000; font-weight: 600; }
button { font: inherit; margin: 0 .25rem .25rem 0; padding: .15rem .6rem; border: 1px solid #333; border-radius: 3px; background: #fff; color: #1a1a1a; cursor: pointer; }
button:focus-visible, input:focus-visible { outline: 3px solid #0b57d0; outline-offset: 1px; }
.paused { color: #8b4500; } .overdue { color: #8b0000; font-weight: 600; } .error { color: #8b0000; }
.track { position: relative; height: 1.4rem; border-bottom: 1px dotted #999; margin: 0 0 .2rem; }
.label { font-size: .85rem; color: #333; margin: .4rem 0 0; }
.mark { position: absolute; top: .1rem; width: .7rem; height: 1.1rem; font-size: .65rem; line-height: 1.1rem; text-align: center; color: #fff; border-radius: 2px; }
.mark.ok { background: #1e6b34; } .mark.error { background: #b00020; } .mark.lost { background: #6a3d9a; }
.mark.abandoned { background: #555; } .mark.missed { background: #fff; color: #b00020; border: 2px solid #b00020; width: .5rem; }
`;

/** The page's script: fetches the snapshot every few seconds and renders it; posts the actions. */
export const DASHBOARD_SCRIPT = `'use strict';
(() => {
  const base = document.body.dataset.base;
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const ago = (ms, now) => { const s = Math.round((now - ms) / 1000); return s < 0 ? 'in ' + (-s) + ' s' : s < 120 ? s + ' s ago' : s < 7200 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'; };
  const row = (cells) => { const tr = el('tr'); for (const cell of cells) { const td = el('td'); if (cell instanceof Node) td.append(cell); else td.textContent = cell; tr.append(td); } return tr; };
  const TRIGGER = { 'catch-up': 'C', retry: 'R', recovery: 'X', manual: 'M' };
  let allowed = [];

  async function act(payload, button) {
    button.disabled = true;
    try {
      const response = await fetch(base + '/actions', { method: 'POST', headers: { 'content-type': 'application/json', 'x-dashboard-action': '1' }, body: JSON.stringify(payload) });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || response.statusText);
      $('problem').hidden = true;
      await refresh();
    } catch (error) {
      $('problem').textContent = String(error.message || error);
      $('problem').hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function actionButton(label, name, payload) {
    const button = el('button', label);
    button.type = 'button';
    button.setAttribute('aria-label', label + ' ' + name);
    button.addEventListener('click', () => act(typeof payload === 'function' ? payload() : payload, button));
    return button;
  }

  function jobActions(job) {
    const cell = el('span');
    if (job.key === null) return cell;
    if (job.pause ? allowed.includes('resume') : allowed.includes('pause')) {
      cell.append(job.pause
        ? actionButton('Resume', job.name, { action: 'resume', job: job.name })
        : actionButton('Pause', job.name, () => ({ action: 'pause', job: job.name, note: $('pause-note').value })));
    }
    if (allowed.includes('trigger')) cell.append(actionButton('Run now', job.name, { action: 'trigger', job: job.name }));
    if (allowed.includes('fill')) for (const tick of job.missed.slice(0, 3)) cell.append(actionButton('Run ' + iso(tick), job.name, { action: 'fill', job: job.name, occurrence: tick }));
    return cell;
  }

  function renderJobs(snapshot) {
    const body = $('jobs').tBodies[0];
    body.replaceChildren(...snapshot.jobs.map((job) => {
      const last = job.lastRun;
      const lastText = last ? ago(last.startedAt, snapshot.generatedAt) + ' on ' + last.replica + ': ' + last.outcome + ' in ' + last.durationMs + ' ms (' + (last.trigger || 'schedule') + ')' + (last.error ? ', ' + last.error : '') : '-';
      const paused = job.pause ? el('span', 'by ' + (job.pause.by || '?') + ', ' + ago(job.pause.at, snapshot.generatedAt) + (job.pause.note ? ': ' + job.pause.note : ''), 'paused') : 'no';
      const overdue = job.overdue ? el('span', iso(job.overdue.occurrence) + ', ' + Math.round(job.overdue.lateMs / 1000) + ' s late', 'overdue') : 'no';
      const schedule = job.cron === null ? '-' : job.cron + (job.timeZone ? ' (' + job.timeZone + ')' : '');
      return row([job.scheduleName ? job.scheduleName + ' (' + job.name + ')' : job.name, schedule, job.nextOccurrence === null ? '-' : iso(job.nextOccurrence), lastText, paused, overdue, jobActions(job)]);
    }));
    $('note-bar').hidden = !allowed.includes('pause');
  }

  function mark(cls, at, snapshot, text, label) {
    const span = el('span', text, 'mark ' + cls);
    span.setAttribute('role', 'img');
    span.setAttribute('aria-label', label);
    span.title = label;
    span.style.left = Math.max(0, Math.min(99, (100 * (at - (snapshot.generatedAt - snapshot.windowMs))) / snapshot.windowMs)) + '%';
    return span;
  }

  function renderTimeline(snapshot) {
    const parts = [];
    for (const job of snapshot.jobs) {
      const byReplica = new Map();
      for (const run of job.runs) byReplica.set(run.replica, [...(byReplica.get(run.replica) || []), run]);
      for (const [replica, runs] of byReplica) {
        parts.push(el('p', job.name + ' on ' + replica, 'label'));
        const track = el('div', undefined, 'track');
        for (const run of runs) track.append(mark(run.outcome, run.startedAt, snapshot, TRIGGER[run.trigger] || '', run.outcome + ' at ' + iso(run.startedAt) + (run.trigger ? ' (' + run.trigger + (run.attempt > 1 ? ', attempt ' + run.attempt : '') + ')' : '')));
        parts.push(track);
      }
      if (job.missed.length > 0) {
        parts.push(el('p', job.name + ': missed', 'label'));
        const track = el('div', undefined, 'track');
        for (const tick of job.missed) track.append(mark('missed', tick, snapshot, '', 'missed ' + iso(tick)));
        parts.push(track);
      }
    }
    $('timeline').replaceChildren(...(parts.length ? parts : [el('p', 'No run recorded in the window.')]));
  }

  function renderLocks(snapshot) {
    $('locks').tBodies[0].replaceChildren(...snapshot.locks.map((lock) => row([
      lock.name, lock.replica || '(unnamed)', lock.since === undefined ? '-' : ago(lock.since, snapshot.generatedAt),
      lock.ttlLeftMs === undefined ? 'none' : Math.round(lock.ttlLeftMs / 1000) + ' s', lock.fencingToken === undefined ? '-' : String(lock.fencingToken),
      allowed.includes('release') ? actionButton('Release', lock.name, { action: 'release', key: lock.name }) : '',
    ])));
  }

  function renderReplicas(snapshot) {
    $('replicas').tBodies[0].replaceChildren(...snapshot.replicas.map((replica) => row([
      replica.replica, replica.jobs.join(', '), replica.clockOffsetMs === null ? 'not measured yet' : replica.clockOffsetMs + ' ms',
    ])));
  }

  function renderDrift(snapshot) {
    $('drift-section').hidden = snapshot.drift.length === 0;
    $('drift').tBodies[0].replaceChildren(...snapshot.drift.flatMap((drift) => drift.definitions.map((seen, i) => row([
      drift.job, (seen.cron || '-') + (seen.timeZone ? ' (' + seen.timeZone + ')' : ''), seen.replicas.join(', '), i === 0 ? 'yes (newest)' : 'no, skips (drift)',
    ]))));
  }

  async function refresh() {
    try {
      const response = await fetch(base + '/data', { headers: { accept: 'application/json' } });
      const snapshot = await response.json();
      if (!response.ok) throw new Error(snapshot.error || response.statusText);
      allowed = snapshot.actions;
      renderJobs(snapshot);
      renderTimeline(snapshot);
      renderLocks(snapshot);
      renderReplicas(snapshot);
      renderDrift(snapshot);
      $('updated').textContent = 'Updated ' + iso(snapshot.generatedAt) + (snapshot.keyPrefix ? ', key prefix ' + snapshot.keyPrefix : '') + (allowed.length ? '' : ' (read-only)');
    } catch (error) {
      $('updated').textContent = 'Could not read the fleet: ' + String(error.message || error);
    }
  }

  refresh();
  setInterval(refresh, 5000);
})();
`;

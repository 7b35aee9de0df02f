// faceidq operator console: plain DOM, no framework, no inline script (see the CSP).
'use strict';
(function () {
  const TOKEN_KEY = 'faceidq.token';
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let timer = null;
  let busy = false;
  let view = '';
  let arg = '';

  // el builds an element: el('td', {className: 'num'}, 'text', child…). Text is never parsed as HTML.
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('aria') || k === 'role' || k === 'scope') e.setAttribute(k.replace(/^aria([A-Z])/, (m, c) => 'aria-' + c.toLowerCase()), v);
      else e[k] = v;
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  class APIError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  // api calls the API with the token; it answers parsed JSON (or the Response when raw).
  async function api(method, path, opts = {}) {
    const headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    if (opts.type) headers['Content-Type'] = opts.type;
    const r = await fetch(path, { method, headers, body: opts.body, cache: 'no-store', credentials: 'omit' });
    if (r.status === 401) { showLogin(token ? 'The token was refused: enter a valid one.' : 'Enter an API token.'); throw new APIError(401, 'Unauthorized', 'token refused'); }
    if (!r.ok) {
      let code = 'HTTP ' + r.status, msg = r.statusText;
      try { const e = await r.json(); code = e.Error.Code; msg = e.Error.Message; } catch (_) { /* not JSON */ }
      throw new APIError(r.status, code, msg);
    }
    if (opts.raw) return r;
    return r.status === 204 ? null : r.json();
  }

  function say(msg, isError) {
    const s = $('status');
    s.textContent = msg || '';
    s.className = isError ? 'error' : '';
  }
  function fail(err) { if (!(err instanceof APIError && err.status === 401)) say((err.code ? err.code + ': ' : '') + err.message, true); }

  const fmtTime = (s) => s ? new Date(s).toLocaleString() : '—';
  function ago(s) {
    if (!s) return '';
    const d = Math.max(0, (Date.now() - new Date(s).getTime()) / 1000);
    return d < 90 ? Math.round(d) + ' s ago' : d < 5400 ? Math.round(d / 60) + ' min ago' : Math.round(d / 3600) + ' h ago';
  }
  function dur(sec) {
    if (sec === null || sec === undefined) return '—';
    sec = Math.round(sec);
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ' + (sec % 60) + ' s';
    return Math.floor(sec / 3600) + ' h ' + Math.floor((sec % 3600) / 60) + ' min';
  }
  const num = (n) => Number(n || 0).toLocaleString();

  // ---- sign-in ----
  function showLogin(msg) {
    stopPolling();
    for (const v of document.querySelectorAll('.view')) v.hidden = true;
    $('login').hidden = false;
    $('logout').hidden = true;
    document.querySelector('nav').hidden = true;
    $('login-error').textContent = msg || '';
    $('token').focus();
  }
  async function signIn(t) {
    token = t;
    try {
      await api('GET', '/v1/pipeline');
    } catch (err) {
      if (!(err instanceof APIError && err.status === 401)) $('login-error').textContent = err.message;
      return false;
    }
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    $('login').hidden = true;
    $('logout').hidden = !token;
    document.querySelector('nav').hidden = false;
    route();
    return true;
  }

  // ---- routing and polling ----
  function route() {
    if (!$('login').hidden) return;
    const h = location.hash.replace(/^#/, '');
    const [v, a] = h.split('/');
    view = ({ pipeline: 'pipeline', campaigns: 'campaigns', job: 'job', webhooks: 'webhooks' })[v] || 'pipeline';
    arg = a ? decodeURIComponent(a) : '';
    let section = view;
    if (view === 'campaigns' && arg) section = 'campaign';
    for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + section;
    for (const n of document.querySelectorAll('nav a')) {
      if (n.dataset.view === view) n.setAttribute('aria-current', 'page'); else n.removeAttribute('aria-current');
    }
    if (view === 'job') { $('job-id').value = arg; if (!arg) $('job-out').textContent = ''; }
    if (section === 'campaign') { resetCampaign(); }
    say('');
    startPolling();
  }
  function stopPolling() { if (timer) clearInterval(timer); timer = null; }
  function startPolling() {
    stopPolling();
    tick();
    timer = setInterval(() => { if (!document.hidden) tick(); }, POLL_MS);
  }
  async function tick() {
    if (busy) return;
    busy = true;
    try {
      if (view === 'pipeline') await refreshPipeline();
      else if (view === 'campaigns' && arg) await refreshCampaign();
      else if (view === 'campaigns') await refreshCampaigns();
      else if (view === 'job') await refreshJob();
      else if (view === 'webhooks') await refreshWebhooks();
    } catch (err) { fail(err); } finally { busy = false; }
  }

  // ---- pipeline and budgets ----
  async function refreshPipeline() {
    const [st, bu] = await Promise.all([api('GET', '/v1/pipeline'), api('GET', '/v1/budgets?seconds=120')]);
    showPipeline(st);
    showBudgets(bu.Budgets || []);
  }
  function showPipeline(st) {
    const b = $('pl-badge');
    b.textContent = st.Paused ? 'Paused' : 'Running';
    b.className = 'badge ' + (st.Paused ? 'paused' : 'running');
    $('pl-detail').textContent = st.Paused
      ? 'reason: ' + (st.Reason || '—') + (st.Since ? ', since ' + fmtTime(st.Since) + ' (' + ago(st.Since) + ')' : '')
      : (st.Since ? 'since ' + fmtTime(st.Since) + ' (' + ago(st.Since) + ')' : 'jobs reach the upstream');
    $('pl-pause').disabled = st.Paused;
    $('pl-resume').disabled = !st.Paused;
  }
  async function pipelineAction(what) {
    try {
      const st = await api('POST', '/v1/pipeline/' + what);
      showPipeline(st);
      say(what === 'pause' ? 'Pipeline paused: no new upstream call starts.' : 'Pipeline resumed.');
      (what === 'pause' ? $('pl-resume') : $('pl-pause')).focus();
    } catch (err) { fail(err); }
  }

  function showBudgets(list) {
    const box = $('budgets');
    if (!list.length) {
      box.replaceChildren(el('p', { className: 'card' }, 'No budget announced yet: each worker announces its budget when it starts.'));
      return;
    }
    const cards = list.map((b) => {
      const secs = b.Seconds || [];
      const done = secs.slice(0, -1); // the current second is still filling
      const total = (s) => s.Interactive + s.Batch;
      const last = done.length ? total(done[done.length - 1]) : 0;
      const recent = done.slice(-10);
      const avg = recent.length ? recent.reduce((a, s) => a + total(s), 0) / recent.length : 0;
      const peak = secs.reduce((a, s) => Math.max(a, total(s)), 0);
      const exceeded = secs.reduce((a, s) => a + s.Exceeded, 0);
      const name = b.Action + ' · ' + b.Endpoint + ' · ' + b.Account;
      const card = el('div', { className: 'card budget' },
        el('h3', {}, name),
        el('p', { className: 'now' }, last + ' calls/s of ' + b.Rate + ' (10 s average ' + avg.toFixed(1) + ', peak ' + peak + ')'),
        el('p', { className: exceeded ? 'error' : 'hint' }, 'RequestLimitExceeded in the last ' + Math.round(secs.length / 60) + ' min: ' + exceeded));
      card.append(chart(secs, b.Rate, name + ': calls per second over the last ' + secs.length + ' seconds; limit ' + b.Rate +
        ', last second ' + last + ', peak ' + peak + ', RequestLimitExceeded ' + exceeded));
      card.append(el('div', { className: 'legend', ariaHidden: 'true' },
        el('span', { className: 'li' }, 'interactive'), el('span', { className: 'lb' }, 'campaign'),
        el('span', { className: 'lx' }, 'RequestLimitExceeded'), el('span', {}, '- - - limit')));
      return card;
    });
    box.replaceChildren(...cards);
  }
  function chart(secs, rate, label) {
    const W = Math.max(280, Math.floor($('budgets').clientWidth - 34)), H = window.innerWidth < 700 ? 150 : 180;
    const L = 30, R = 6, T = 10, B = 20, pw = W - L - R, ph = H - T - B;
    const top = Math.max(rate * 1.2, ...secs.map((s) => s.Interactive + s.Batch), 1);
    const y = (v) => T + ph - (v / top) * ph;
    const s = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': label });
    for (const v of [0, rate / 2, rate]) {
      s.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      const t = svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' });
      t.textContent = Math.round(v);
      s.append(t);
    }
    const bw = pw / Math.max(secs.length, 1);
    secs.forEach((sec, i) => {
      const x = L + i * bw, w = Math.max(bw - 0.5, 0.5);
      if (sec.Interactive) s.append(svg('rect', { class: 'i', x, width: w, y: y(sec.Interactive), height: ph + T - y(sec.Interactive) }));
      if (sec.Batch) s.append(svg('rect', { class: 'b', x, width: w, y: y(sec.Interactive + sec.Batch), height: y(sec.Interactive) - y(sec.Interactive + sec.Batch) }));
      if (sec.Exceeded) s.append(svg('rect', { class: 'x', x, width: Math.max(w, 2), y: T, height: 6 }));
    });
    s.append(svg('line', { class: 'limit', x1: L, x2: W - R, y1: y(rate), y2: y(rate) }));
    const t0 = svg('text', { x: L, y: H - 4 });
    t0.textContent = '−' + Math.round(secs.length / 60) + ' min';
    const t1 = svg('text', { x: W - R, y: H - 4, 'text-anchor': 'end' });
    t1.textContent = 'now';
    s.append(t0, t1);
    return s;
  }

  // ---- campaigns ----
  async function refreshCampaigns() {
    const list = await api('GET', '/v1/batches');
    list.sort((a, b) => (a.CreatedAt < b.CreatedAt ? 1 : -1));
    const box = $('campaign-list');
    if (!list.length) { box.replaceChildren(el('p', { className: 'card' }, 'No campaign yet: import a file above.')); return; }
    const rows = list.map((c) => el('tr', {},
      el('td', { className: 'wrap' }, el('a', { href: '#campaigns/' + encodeURIComponent(c.BatchId) }, c.Name || c.BatchId)),
      el('td', {}, el('span', { className: 'badge ' + c.State }, c.State)),
      el('td', { className: 'hide-narrow' }, c.Mode),
      el('td', { className: 'num' }, num(c.Total)),
      el('td', { className: 'hide-narrow' }, fmtTime(c.CreatedAt))));
    box.replaceChildren(el('div', { className: 'card scroll' }, el('h3', {}, 'All campaigns'),
      el('table', {}, el('thead', {}, el('tr', {},
        el('th', { scope: 'col' }, 'Name'), el('th', { scope: 'col' }, 'State'), el('th', { scope: 'col', className: 'hide-narrow' }, 'Mode'),
        el('th', { scope: 'col', className: 'num' }, 'Jobs'), el('th', { scope: 'col', className: 'hide-narrow' }, 'Created'))),
      el('tbody', {}, ...rows))));
  }

  async function importFile(ev) {
    ev.preventDefault();
    const f = $('imp-file').files[0];
    const out = $('imp-result');
    if (!f) { out.replaceChildren(el('p', { className: 'error' }, 'Choose a file first.')); return; }
    const q = new URLSearchParams();
    if ($('imp-name').value.trim()) q.set('name', $('imp-name').value.trim());
    if ($('imp-mode').value === 'links') q.set('mode', 'links');
    const csv = /\.csv$/i.test(f.name) || f.type === 'text/csv';
    out.replaceChildren(el('p', {}, 'Importing ' + f.name + '…'));
    try {
      const s = await api('POST', '/v1/batches' + (q.toString() ? '?' + q : ''), { body: f, type: csv ? 'text/csv' : 'application/x-ndjson' });
      const parts = [el('p', { className: 'summary' }, 'Imported ', el('a', { href: '#campaigns/' + encodeURIComponent(s.BatchId) }, s.Name || s.BatchId),
        ': ' + num(s.Accepted) + ' of ' + num(s.Lines) + ' lines accepted (' + num(s.Created) + ' new, ' + num(s.Existing) + ' already there), ' +
        num(s.RejectedCount) + ' rejected.')];
      if (s.Rejected && s.Rejected.length) {
        parts.push(el('div', { className: 'rejected' }, el('table', { className: 'stack' },
          el('caption', { className: 'hint' }, 'Rejected lines' + (s.RejectedCount > s.Rejected.length ? ' (first ' + s.Rejected.length + ')' : '')),
          el('thead', {}, el('tr', {}, el('th', { scope: 'col', className: 'num' }, 'Line'), el('th', { scope: 'col' }, 'Code'), el('th', { scope: 'col' }, 'Reason'))),
          el('tbody', {}, ...s.Rejected.map((r) => el('tr', {}, el('td', { className: 'num', dataset: { label: 'Line' } }, r.Line),
            el('td', { className: 'wrap', dataset: { label: 'Code' } }, r.Error.Code), el('td', { className: 'wrap', dataset: { label: 'Reason' } }, r.Error.Message)))))));
      }
      out.replaceChildren(...parts);
      say('Imported ' + (s.Name || s.BatchId) + '.');
      refreshCampaigns().catch(fail);
    } catch (err) {
      out.replaceChildren(el('p', { className: 'error', role: 'alert' }, 'Import failed: ' + (err.code ? err.code + ': ' : '') + err.message));
    }
  }

  let tally = null;
  function resetCampaign() {
    tally = null;
    $('campaign-h').textContent = 'Campaign';
    $('cp-codes').replaceChildren(el('p', { className: 'hint' }, 'Counted from the campaign\'s results on request.'));
  }
  const FINAL = ['succeeded', 'failed', 'canceled', 'expired'];
  async function refreshCampaign() {
    const p = await api('GET', '/v1/batches/' + encodeURIComponent(arg));
    $('campaign-h').textContent = 'Campaign ' + (p.Name || p.BatchId);
    const counts = p.Counts || {};
    const links = p.Mode === 'links';
    const final = links ? (counts.opened || 0) : FINAL.reduce((a, k) => a + (counts[k] || 0), 0);
    const pct = p.Total ? (final === p.Total ? 100 : Math.floor((final / p.Total) * 100)) : 0;
    const bar = $('cp-progress');
    bar.value = pct;
    bar.textContent = pct + ' %';
    $('cp-progress-label').textContent = links ? 'Links opened' : 'Jobs final';
    $('cp-summary').textContent = num(final) + ' of ' + num(p.Total) + (links ? ' opened' : ' final') + ' (' + pct + ' %)' + (p.Done ? ' · done' : '');
    const fact = (k, v, cls) => el('div', { className: cls || '' }, el('dt', {}, k), el('dd', {}, v));
    $('cp-facts').replaceChildren(
      fact('State', el('span', { className: 'badge ' + p.State }, p.State)), fact('Mode', p.Mode),
      fact('Rate', (p.Rate || 0).toFixed(1) + ' jobs/s'),
      fact('ETA', p.Done ? 'done' : p.ETA === null ? '— (nothing finishing, or paused)' : dur(p.ETA) + (p.ETAAt ? ' (' + new Date(p.ETAAt).toLocaleTimeString() + ')' : '')),
      fact('Fed to workers', num(p.Fed)), fact('Created', fmtTime(p.CreatedAt)), fact('BatchId', p.BatchId, 'wide'));
    $('cp-pause').disabled = p.State !== 'active';
    $('cp-resume').disabled = p.State !== 'paused';
    $('cp-cancel').disabled = p.State === 'canceled' || p.Done;
    $('cp-rerun').disabled = links;
    const keys = Object.keys(counts).sort((a, b) => counts[b] - counts[a] || (a < b ? -1 : 1));
    $('cp-status').replaceChildren(el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Status'), el('th', { scope: 'col', className: 'num' }, 'Jobs'))),
      el('tbody', {}, ...keys.map((k) => el('tr', {}, el('td', {}, k), el('td', { className: 'num' }, num(counts[k])))),
        p.Expired ? el('tr', {}, el('td', {}, 'record expired'), el('td', { className: 'num' }, num(p.Expired))) : null));
    if (p.ErrorCodes) showCodes({ codes: p.ErrorCodes, verification: p.Verification || {} });
    else if (tally) showCodes(tally);
  }
  function countTable(title, m, empty) {
    const ks = Object.keys(m).sort((a, b) => m[b] - m[a]);
    if (!ks.length) return el('p', { className: 'hint' }, empty);
    return el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, title), el('th', { scope: 'col', className: 'num' }, 'Jobs'))),
      el('tbody', {}, ...ks.map((k) => el('tr', {}, el('td', { className: 'wrap' }, k), el('td', { className: 'num' }, num(m[k]))))));
  }
  function showCodes(t) {
    $('cp-codes').replaceChildren(countTable('Error code', t.codes, 'No job failed.'),
      el('h3', {}, 'Verification outcomes'), countTable('Outcome', t.verification, 'No verification result fetched.'));
  }
  async function tallyCodes() {
    const id = arg;
    say('Counting from the results…');
    try {
      const r = await api('GET', '/v1/batches/' + encodeURIComponent(id) + '/results', { raw: true });
      const text = await r.text();
      const t = { codes: {}, verification: {} };
      for (const line of text.split('\n')) {
        if (!line) continue;
        let j;
        try { j = JSON.parse(line); } catch (_) { continue; }
        if (j.Error && j.Error.Code) t.codes[j.Error.Code] = (t.codes[j.Error.Code] || 0) + 1;
        if (j.Verification && j.Verification.Status) t.verification[j.Verification.Status] = (t.verification[j.Verification.Status] || 0) + 1;
      }
      if (id !== arg) return;
      tally = t;
      showCodes(t);
      say('Counted.');
    } catch (err) { fail(err); }
  }
  async function campaignAction(what) {
    if (what === 'cancel' && !window.confirm('Cancel every job of this campaign that has not started?')) return;
    try {
      const r = await api('POST', '/v1/batches/' + encodeURIComponent(arg) + '/' + what);
      const msg = { pause: 'Campaign paused: jobs already fed finish.', resume: 'Campaign resumed.',
        cancel: 'Canceled ' + (r && r.Canceled) + ' jobs (' + (r && r.Running) + ' were running).',
        rerun: 'Re-running ' + (r && r.Reopened) + ' jobs (' + (r && r.Skipped) + ' skipped).' }[what];
      say(msg);
      await refreshCampaign();
    } catch (err) { fail(err); }
  }
  async function exportCampaign(format) {
    try {
      const r = await api('GET', '/v1/batches/' + encodeURIComponent(arg) + '/results' + (format === 'csv' ? '?format=csv' : ''), { raw: true });
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: (arg || 'campaign') + (format === 'csv' ? '.csv' : '.ndjson') });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say('Export downloaded.');
    } catch (err) { fail(err); }
  }

  // ---- job ----
  async function refreshJob() {
    if (!arg) return;
    try {
      const j = await api('GET', '/v1/tokens/' + encodeURIComponent(arg));
      $('job-out').textContent = JSON.stringify(j, null, 2);
    } catch (err) {
      $('job-out').textContent = (err.code ? err.code + ': ' : '') + err.message;
    }
  }

  // ---- dead webhooks ----
  async function refreshWebhooks() {
    const list = await api('GET', '/v1/webhooks/failed');
    $('wh-all').disabled = !list.length;
    const box = $('wh-list');
    if (!list.length) { box.replaceChildren(el('p', { className: 'card' }, 'No dead webhook: every delivery succeeded or is still being retried.')); return; }
    const td = (label, v, cls) => el('td', { className: cls || 'wrap', dataset: { label } }, v);
    box.replaceChildren(el('div', { className: 'card' }, el('table', { className: 'stack' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Job'), el('th', { scope: 'col' }, 'URL'),
        el('th', { scope: 'col', className: 'num' }, 'Attempts'), el('th', { scope: 'col' }, 'Last error'), el('th', { scope: 'col' }, 'Given up'),
        el('th', { scope: 'col' }, 'Action'))),
      el('tbody', {}, ...list.map((d) => el('tr', {},
        td('Job', el('a', { href: '#job/' + encodeURIComponent(d.JobId) }, d.JobId)),
        td('URL', d.URL), td('Attempts', d.Attempts, 'num'), td('Last error', d.LastError || ''), td('Given up', fmtTime(d.LastAt)),
        el('td', {}, el('button', { type: 'button', className: 'quiet', dataset: { replay: d.JobId }, ariaLabel: 'Replay the webhook of ' + d.JobId }, 'Replay'))))))));
  }
  async function replay(jobID) {
    try {
      const r = await api('POST', jobID ? '/v1/webhooks/failed/' + encodeURIComponent(jobID) + '/replay' : '/v1/webhooks/failed/replay');
      say('Replayed ' + r.Replayed + ' webhook' + (r.Replayed === 1 ? '' : 's') + '.');
      await refreshWebhooks();
      $('wh-all').focus();
    } catch (err) { fail(err); }
  }

  // ---- wiring ----
  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (await signIn($('token').value.trim())) $('token').value = '';
    });
    $('logout').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); token = ''; showLogin('Token forgotten.'); });
    $('pl-pause').addEventListener('click', () => pipelineAction('pause'));
    $('pl-resume').addEventListener('click', () => pipelineAction('resume'));
    $('import-form').addEventListener('submit', importFile);
    for (const a of ['pause', 'resume', 'cancel', 'rerun']) $('cp-' + a).addEventListener('click', () => campaignAction(a));
    $('cp-export-ndjson').addEventListener('click', () => exportCampaign('ndjson'));
    $('cp-export-csv').addEventListener('click', () => exportCampaign('csv'));
    $('cp-tally').addEventListener('click', tallyCodes);
    $('job-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('job-id').value.trim();
      if (location.hash === '#job/' + encodeURIComponent(id)) refreshJob(); else location.hash = '#job/' + encodeURIComponent(id);
    });
    $('wh-all').addEventListener('click', () => replay(''));
    $('wh-list').addEventListener('click', (ev) => { const b = ev.target.closest('button[data-replay]'); if (b) replay(b.dataset.replay); });
    window.addEventListener('hashchange', () => { route(); $('main').focus(); });
    if (token) signIn(token).then((ok) => { if (!ok && $('login').hidden) showLogin(''); });
    else showLogin(''); // ask first: a call without a token would only be refused
  });
})();

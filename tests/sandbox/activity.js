'use strict';
// The sandbox's DealCloud site (/dealcloud) and ExaVault account
// (/exavault/api/v2): their activity APIs as the shared api-docs describe
// them, over seeded data that spans many pages and several 90-day windows.
//
// The documents are dealcloud-user-activity.txt and exavault-activity-api.md.
// Faults come on demand and every request is recorded (/activity-control/...).
//
// DealCloud: POST /dealcloud/api/rest/v1/oauth/token (client_credentials,
// client_secret in the form; tokens last --token-ttl seconds, 900 by
// default, as the service's 15 minutes), POST .../management/user/activity
// with pageNumber/pageSize in the query. Dates are evaluated to the
// nearest date (rounded half up), the end date inclusive; a range shorter
// than one day or longer than 90 days is a 400 with a `message`.
// ExaVault: GET /activity/session and /activity/webhooks with ev-api-key
// and ev-access-token headers, offset/limit paging capped at `evLimitCap`
// rows a page, totalResults always 0, sort by a comma list of fields.

const crypto = require('crypto');

const { parseFault, faultMatches, redirectResponse, send } = require('./insights');
const { mulberry32: rng, hostile: formula } = require('./insights-data');

const DAY = 86400000;
const MAX_RECORDED = 20000;
const DC_CLIENT = { id: '1047', secret: 'dealcloud-sandbox-secret' };
const EV_KEY = 'sandboxaccount-zwSuWUZ8S38h33qPS8v0s';
const EV_TOKEN = '19853ef63a0bc348024a9e4cfd4a92520d2dfd04e88d8679fb1ed6bc551593d1';

// The documented tables, as the service names them (activityType and
// sourceType in rows may differ from the tables, as the sample's do).
const ACTIVITY = ['', 'Login Successful', 'Login Failed', 'Logout', 'SessionExpired', 'Login Failed (Locked Out)',
  'Login Requires Verification', 'Login Failed (Forbidden)', 'Export Data', 'User Proxy / Switch', 'BackupAccess',
  'IP Restriction Applied'];
const SOURCE = ['', 'Web', 'Mobile', 'Outlook', 'Excel', 'Word', 'Unknown', 'Chrome Extension', 'Web Add-In',
  'Mobile Next', 'PowerPoint', 'Teams'];
const EV_OPS = ['PASS', 'EXIT', 'STOR', 'RETR', 'DELE', 'MKD', 'RNTO', 'MOVE', 'COPY', 'COMPR', 'EXTRACT', 'SHARE',
  'SEND', 'RECV', 'EDIT_SEND', 'EDIT_SHARE', 'EDIT_RECV', 'DELE_SEND', 'DELE_RECV', 'DELE_SHARE', 'NOTIFY',
  'EDIT_NTFY', 'DELE_NTFY', 'USER', 'EDIT_USER', 'DELE_USER', 'DFA', 'EDIT_DFA', 'DELE_DFA'];
const EV_EVENTS = ['resources.upload', 'resources.download', 'resources.delete', 'resources.createFolder',
  'resources.rename', 'resources.move', 'resources.copy', 'resources.compress', 'resources.extract',
  'shares.formSubmit'];

// "2022-01-06T06:27:55.6": UTC without a zone, trailing zeros of the
// fraction dropped, as in the sample.
function dcDate(ms) {
  const iso = new Date(ms).toISOString().slice(0, 23);
  return iso.replace(/\.?0+$/, '');
}

const uuid = (r) => {
  const h = () => Math.floor(r() * 16).toString(16);
  const part = (n) => Array.from({ length: n }, h).join('');
  return `${part(8)}-${part(4)}-4${part(3)}-a${part(3)}-${part(12)}`;
};

// DealCloud activity from `start` for `days` days: `perDay` rows a day at
// random times plus one at exactly midnight (rows on every window edge),
// in time order.
// "01/05/2022 10:00:00" (month first, as .NET's invariant culture writes
// it), or with ampm "1/5/2022 10:00:00 AM" (en-US).
function usDate(ms, ampm) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  const time = (h) => `${p(h)}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  if (!ampm) return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()} ${time(d.getUTCHours())}`;
  const h = d.getUTCHours() % 12 || 12;
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${time(h)} ${d.getUTCHours() < 12 ? 'AM' : 'PM'}`;
}

// The odd rows the options ask for, in place (seeded rows stay the same
// otherwise).
function oddDealCloud(rows, c) {
  rows.forEach((row, i) => {
    if (c.dcUsDates && i % c.dcUsDates === 1) row.eventDate = usDate(row._t, false);
    if (c.dcUsDates && i % c.dcUsDates === 2) row.eventDate = usDate(row._t, true);
    if (c.dcBadDates && i % c.dcBadDates === 3) row.eventDate = 'sometime';
    if (i === c.dcSurrogateRow) row.fullName = `${row.fullName} \ud800 (lone surrogate)`;
  });
}

function seedDealCloud({ start, days, perDay, seed }) {
  const r = rng(seed);
  const users = Array.from({ length: 12 }, (_, i) => ({
    userId: i + 1, userName: `user${i + 1}@dealcloud.test`, fullName: `User Number${i + 1}`,
  }));
  const rows = [];
  for (let d = 0; d < days; d++) {
    const times = [start + d * DAY];
    for (let i = 0; i < perDay; i++) times.push(start + d * DAY + Math.floor(r() * DAY));
    times.sort((a, b) => a - b);
    for (const t of times) {
      const u = users[Math.floor(r() * users.length)];
      const activityTypeId = 1 + Math.floor(r() * 11);
      const sourceTypeId = 1 + Math.floor(r() * 11);
      const row = {
        userName: u.userName, fullName: u.fullName, eventDate: dcDate(t), activityTypeId,
        activityType: ACTIVITY[activityTypeId], sourceTypeId, sourceType: SOURCE[sourceTypeId],
      };
      if (r() < 0.8) row.ipAddress = 167772160 + Math.floor(r() * 65536);   // 10.0.x.x
      row.userId = u.userId;
      row.sessionId = uuid(r);
      if (activityTypeId === 8) row.exportDataType = Math.floor(r() * 5);
      row._t = t;
      rows.push(row);
    }
  }
  return { rows, users };
}

// ExaVault session and webhook logs: `sessions` and `webhooks` rows spread
// over `days` days from `start`, in time order, with ids.
function seedExaVault({ start, days, sessions, webhooks, seed }) {
  const r = rng(seed);
  const users = ['jdoe', 'asmith', 'bchan', 'admin', 'mlopez', 'tkim'];
  const span = days * DAY;
  const times = (n) => Array.from({ length: n }, () => start + Math.floor(r() * span)).sort((a, b) => a - b);
  const sessionRows = times(sessions).map((t, i) => {
    const operation = EV_OPS[Math.floor(r() * EV_OPS.length)];
    const user = users[Math.floor(r() * users.length)];
    return {
      type: 'sessionActivity', id: String(100000 + i),
      attributes: {
        date: new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'), ipAddress: `192.0.2.${1 + Math.floor(r() * 250)}`,
        userName: user, protocol: r() < 0.7 ? 'web' : 'ftp', operation,
        bytesTransferred: Math.floor(r() * 1e6), fileSource: `/folder${Math.floor(r() * 9)}/file${i}.pdf`,
        fileDest: operation === 'MOVE' || operation === 'COPY' ? `/archive/file${i}.pdf` : '', duration: Math.floor(r() * 90),
        sessionId: uuid(r),
      },
      _t: t,
    };
  });
  // Webhook times are written with a +01:00 offset: the same instant, another zone.
  const plusOne = (t) => new Date(t + 3600000).toISOString().replace(/\.\d+Z$/, '+01:00');
  const webhookRows = times(webhooks).map((t, i) => ({
    type: 'webhookActivity', id: String(500000 + i),
    attributes: {
      created: plusOne(t), endpointUrl: `https://hooks.example.test/${i % 3}`, event: EV_EVENTS[Math.floor(r() * EV_EVENTS.length)],
      statusCode: r() < 0.9 ? 200 : 500, resourcePath: `/folder${Math.floor(r() * 9)}/file${i}.pdf`,
      username: users[Math.floor(r() * users.length)], attempt: 1, response: 'ok',
    },
    _t: t,
  }));
  return { sessions: sessionRows, webhooks: webhookRows, users };
}

// With --hostile: every text field of a row (an ExaVault item's
// attributes) starts with a formula-like text, times and ExaVault's id and
// type aside (the API's own values, which paging and sorting rest on).
const KEEP = new Set(['eventDate', 'date', 'created']);
function hostileRows(rows) {
  rows.forEach((row, i) => {
    const fields = row.attributes || row;
    Object.keys(fields).forEach((k, j) => {
      if (typeof fields[k] === 'string' && !KEEP.has(k)) fields[k] = formula(i + j, fields[k]);
    });
  });
}

const strip = (row) => {
  const { _t, ...rest } = row;   // eslint-disable-line no-unused-vars
  return rest;
};

function json(status, value, headers = {}) {
  return { status, headers: { 'Content-Type': 'application/json', ...headers }, body: Buffer.from(JSON.stringify(value)) };
}

// "2024-01-01", "2024-01-01T10:00:00Z", "...+01:00", "...704Z": ms, or NaN.
function parseTime(s) {
  if (typeof s !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(s)) return NaN;
  const zoned = /([zZ]|[+-]\d{2}:\d{2})$/.test(s) || s.length === 10 ? s : `${s}Z`;
  return Date.parse(zoned);
}

const nearestDate = (ms) => Math.floor((ms + DAY / 2) / DAY) * DAY;

// A glob with '*' as the documents' path filters use.
const glob = (pattern) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

function createActivity({ tokenTtl = 900, now = Date.now(), hostile = false } = {}) {
  const today = Math.floor(now / DAY) * DAY;
  const defaults = {
    // A year and a half of DealCloud activity ending yesterday.
    dcStart: today - 540 * DAY, dcDays: 540, dcPerDay: 6,
    evStart: today - 400 * DAY, evDays: 400, evSessions: 3000, evWebhooks: 700,
    evLimitCap: 500, dcPageCap: 1000, tokenTtl,
    // Services that go round (0: off). RepeatPages N: page N+1 is page 1
    // again (A, B, A, B ... for 2); ShiftRows k: each page starts k rows
    // before where the one before ended.
    dcRepeatPages: 0, dcShiftRows: 0, evRepeatPages: 0, evShiftRows: 0,
    // Odd rows (0: off). UsDates N: every Nth DealCloud row's eventDate as
    // "MM/dd/yyyy HH:mm:ss" (and the one after it with AM/PM); BadDates N:
    // every Nth as text that is no time; SurrogateRow i: row i (from 0)
    // has a lone UTF-16 surrogate (\ud800) in its fullName; EvPadBytes n:
    // every ExaVault session row carries n bytes of padding (a huge page).
    dcUsDates: 0, dcBadDates: 0, dcSurrogateRow: -1, evPadBytes: 0,
    // A page that ends early (0: off): EvShortAt n: the ExaVault page that
    // would hold row n (from 0) of a log's answer ends just before it, as a
    // service that caps one page below the others; the rows go on after.
    evShortAt: 0,
    // ExaVault's endDate taken as the end, not included (1), instead of
    // included (0), and startDate as "after" (1) instead of "from" (0): a
    // client must rely on neither.
    evEndExclusive: 0, evStartExclusive: 0,
  };
  const state = { config: { ...defaults }, requests: [], faults: [], tokens: new Map(), stats: { dc_tokens: 0 } };
  let dc;
  let ev;
  let evAdded = 0;
  function reseed() {
    evAdded = 0;
    const c = state.config;
    dc = seedDealCloud({ start: c.dcStart, days: c.dcDays, perDay: c.dcPerDay, seed: 7 });
    oddDealCloud(dc.rows, c);
    ev = seedExaVault({ start: c.evStart, days: c.evDays, sessions: c.evSessions, webhooks: c.evWebhooks, seed: 11 });
    if (hostile) [dc.rows, ev.sessions, ev.webhooks].forEach(hostileRows);
    if (c.evPadBytes) {
      const pad = 'x'.repeat(c.evPadBytes);
      for (const row of ev.sessions) row.attributes.padding = pad;
    }
  }

  // Where a page starts on a service that goes round: `at` is where it
  // should start, `size` the page size.
  function wrongStart(at, size, repeatPages, shiftRows) {
    if (repeatPages) return at % (repeatPages * size);
    if (shiftRows) return Math.max(0, at - Math.floor(at / size) * shiftRows);
    return at;
  }
  reseed();

  function record(req, body) {
    const entry = { method: req.method, url: req.url, headers: { ...req.headers }, body: body ? body.toString('utf8') : '', time: Date.now() };
    state.requests.push(entry);
    if (state.requests.length > MAX_RECORDED) state.requests.shift();
    return entry;
  }

  function takeFault(req) {
    for (const f of state.faults) {
      if (!faultMatches(f, req)) continue;
      f.remaining -= 1;
      if (f.remaining <= 0) state.faults = state.faults.filter((x) => x !== f);
      return f;
    }
    return null;
  }

  // ---- DealCloud ----
  function dcToken(body) {
    const form = new URLSearchParams(body.toString('utf8'));
    if (form.get('grant_type') !== 'client_credentials') return json(400, { error: 'unsupported_grant_type' });
    if (form.get('client_id') !== DC_CLIENT.id || form.get('client_secret') !== DC_CLIENT.secret) {
      return json(401, { error: 'invalid_client', error_description: 'Client authentication failed.' });
    }
    const token = crypto.randomBytes(24).toString('hex');
    const scope = form.get('scope') || '';
    state.tokens.set(token, { expires: Date.now() + state.config.tokenTtl * 1000, scope });
    state.stats.dc_tokens++;
    return json(200, { access_token: token, token_type: 'bearer', expires_in: state.config.tokenTtl, scope });
  }

  function dcAuthorized(req) {
    const m = /^Bearer (.+)$/i.exec(req.headers.authorization || '');
    const t = m && state.tokens.get(m[1]);
    if (!t || t.expires < Date.now()) return json(401, { message: 'Authorization has been denied for this request.' });
    if (!t.scope.split(' ').includes('user_management')) return json(403, { message: 'The user_management scope is required.' });
    return null;
  }

  function dcActivity(req, url, body) {
    const denied = dcAuthorized(req);
    if (denied) return denied;
    let q;
    try {
      q = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch {
      return json(400, { message: 'The request body is not valid JSON.' });
    }
    // Property names bind without regard to case (userIDs, userIds).
    const get = (name) => {
      const k = Object.keys(q).find((x) => x.toLowerCase() === name.toLowerCase());
      return k === undefined ? undefined : q[k];
    };
    const from = get('dateFrom') === undefined ? today - 90 * DAY : parseTime(get('dateFrom'));
    const to = get('dateTo') === undefined ? today : parseTime(get('dateTo'));
    if (Number.isNaN(from) || Number.isNaN(to)) return json(400, { message: 'DateFrom and DateTo must be dates.' });
    const dFrom = nearestDate(from);
    const dTo = nearestDate(to);
    if (dTo - dFrom < DAY) return json(400, { message: 'DateTo should be greater than DateFrom.' });
    if (dTo - dFrom > 90 * DAY) return json(400, { message: 'The date range cannot be longer than 90 days.' });
    const pageNumber = Number(url.searchParams.get('pageNumber') || 1);
    const asked = Number(url.searchParams.get('pageSize') || 10);
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || !Number.isInteger(asked) || asked < 1) {
      return json(400, { message: 'pageNumber and pageSize must be positive integers.' });
    }
    const pageSize = Math.min(asked, state.config.dcPageCap);
    const users = get('userIds');
    const activity = get('activity');
    const source = get('source');
    const exportType = get('exportDataType');
    // The end date counts whole: rows up to the end of that day.
    const rows = dc.rows.filter((r) => r._t >= dFrom && r._t < dTo + DAY
      && (!Array.isArray(users) || users.length === 0 || users.includes(r.userId))
      && (activity === undefined || activity === null || r.activityTypeId === activity)
      && (source === undefined || source === null || r.sourceTypeId === source)
      && (exportType === undefined || exportType === null || r.exportDataType === exportType));
    const at = wrongStart((pageNumber - 1) * pageSize, pageSize, state.config.dcRepeatPages, state.config.dcShiftRows);
    const page = rows.slice(at, at + pageSize).map(strip);
    return json(200, { totalRecords: rows.length, rows: page });
  }

  // ---- ExaVault ----
  function evAuthorized(req) {
    if (req.headers['ev-api-key'] !== EV_KEY || req.headers['ev-access-token'] !== EV_TOKEN) {
      return json(401, { responseStatus: 401, errors: [{ code: 'ERROR_INVALID_CREDENTIALS', detail: 'HTTP_UNAUTHORIZED' }] });
    }
    return null;
  }

  const evBad = (detail) => json(400, { responseStatus: 400, errors: [{ code: 'ERROR_INVALID_PARAMETER', detail }] });

  function evList(req, url, rows, filters, sortable) {
    const denied = evAuthorized(req);
    if (denied) return denied;
    const p = url.searchParams;
    const start = p.has('startDate') ? parseTime(p.get('startDate')) : -Infinity;
    const end = p.has('endDate') ? parseTime(p.get('endDate')) : Infinity;
    if (Number.isNaN(start) || Number.isNaN(end)) return evBad('startDate and endDate must be dates.');
    if (start > end) return evBad('endDate must not be before startDate.');
    const offset = Number(p.get('offset') || 0);
    const limit = Number(p.get('limit') || 25);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1) {
      return evBad('offset and limit must be whole numbers (limit at least 1).');
    }
    let out = rows.filter((r) => (state.config.evStartExclusive ? r._t > start : r._t >= start)
      && (state.config.evEndExclusive ? r._t < end : r._t <= end));
    for (const [param, attr, kind] of filters) {
      if (!p.has(param)) continue;
      const want = p.get(param);
      if (kind === 'glob') out = out.filter((r) => glob(want).test(String(r.attributes[attr])));
      else if (kind === 'int') out = out.filter((r) => r.attributes[attr] === Number(want));
      else if (kind === 'enum') {
        if (attr === 'operation' && !EV_OPS.includes(want)) return evBad(`Unknown operation type '${want}'.`);
        out = out.filter((r) => r.attributes[attr] === want);
      } else out = out.filter((r) => r.attributes[attr] === want);
    }
    if (p.has('sort')) {
      const keys = p.get('sort').split(',').map((k) => k.trim()).filter(Boolean);
      for (const k of keys) {
        if (!sortable.includes(k.replace(/^-/, ''))) return evBad(`Cannot sort by '${k}'.`);
      }
      const value = (r, k) => (k === 'date' ? r._t : r.attributes[k]);
      out = [...out].sort((a, b) => {
        for (const k of keys) {
          const desc = k.startsWith('-');
          const name = desc ? k.slice(1) : k;
          const x = value(a, name);
          const y = value(b, name);
          if (x < y) return desc ? 1 : -1;
          if (x > y) return desc ? -1 : 1;
        }
        return Number(a.id) - Number(b.id);
      });
    }
    const size = Math.min(limit, state.config.evLimitCap);
    const at = wrongStart(offset, size, state.config.evRepeatPages, state.config.evShiftRows);
    const short = state.config.evShortAt;
    const stop = short > at && short < at + size ? short : at + size;
    const data = out.slice(at, stop).map(strip);
    return json(200, { responseStatus: 200, totalResults: 0, returnedResults: data.length, data });
  }

  const SESSION_FILTERS = [['ipAddress', 'ipAddress'], ['username', 'userName'], ['path', 'fileSource', 'glob'],
    ['type', 'operation', 'enum']];
  const WEBHOOK_FILTERS = [['endpointUrl', 'endpointUrl'], ['event', 'event'], ['statusCode', 'statusCode', 'int'],
    ['resourcePath', 'resourcePath', 'glob'], ['username', 'username']];

  const API = {
    'POST /dealcloud/api/rest/v1/oauth/token': (req, url, body) => dcToken(body),
    'POST /dealcloud/api/rest/v1/management/user/activity': dcActivity,
    'GET /exavault/api/v2/activity/session': (req, url) => evList(req, url, ev.sessions, SESSION_FILTERS,
      ['date', 'userName', 'operation', 'ipAddress']),
    'GET /exavault/api/v2/activity/webhooks': (req, url) => evList(req, url, ev.webhooks, WEBHOOK_FILTERS,
      ['date', 'event', 'statusCode', 'username']),
  };

  async function handleApi(req, res, body, url, op) {
    const entry = record(req, body);
    const fault = takeFault(req);
    let response;
    if (fault && fault.redirect) {
      response = redirectResponse(fault, req);
    } else if (fault && fault.token_revoked) {
      for (const t of state.tokens.values()) t.expires = 0;
      response = json(401, { message: 'Authorization has been denied for this request.' });
    } else if (fault && fault.status) {
      const headers = fault.retry_after !== undefined ? { 'Retry-After': fault.retry_after } : {};
      response = json(fault.status, { message: fault.message || `Injected fault: HTTP ${fault.status}.` }, headers);
    } else {
      response = op(req, url, body);
    }
    entry.status = response.status;
    await send(res, response, fault);
  }

  // ---- control ----
  const summary = () => ({
    dealcloud: {
      client_id: DC_CLIENT.id, client_secret: DC_CLIENT.secret, rows: dc.rows.length,
      first: dcDate(dc.rows[0]._t), last: dcDate(dc.rows[dc.rows.length - 1]._t), start: dcDate(state.config.dcStart),
      days: state.config.dcDays, users: dc.users.map((u) => u.userId), page_cap: state.config.dcPageCap,
    },
    exavault: {
      api_key: EV_KEY, access_token: EV_TOKEN, sessions: ev.sessions.length, webhooks: ev.webhooks.length,
      first: ev.sessions[0] && ev.sessions[0].attributes.date, limit_cap: state.config.evLimitCap, users: ev.users,
    },
  });

  function setConfig(b) {
    for (const [k, v] of Object.entries(b)) {
      if (!(k in defaults) || typeof v !== 'number' || (v < 0 && k !== 'dcSurrogateRow')) {
        throw new Error(`Bad config field '${k}'. Known (numbers): ${Object.keys(defaults).join(', ')}.`);
      }
    }
    Object.assign(state.config, b);
    if (Object.keys(b).some((k) => /^(dc|ev)(Start|Days|PerDay|Sessions|Webhooks|UsDates|BadDates|SurrogateRow|PadBytes)$/.test(k))) reseed();
    return summary();
  }

  const CONTROL = {
    'GET /faults': () => state.faults,
    'POST /faults': (b) => {
      state.faults.push(...(Array.isArray(b) ? b : [b]).map(parseFault));
      return state.faults;
    },
    'DELETE /faults': () => { state.faults = []; return []; },
    'GET /requests': (b, url) => state.requests.filter((r) => !url.searchParams.get('match') || r.url.includes(url.searchParams.get('match'))),
    'DELETE /requests': () => { state.requests = []; return []; },
    'GET /stats': () => state.stats,
    // The DealCloud rows in [from, to): how many, and their session ids in order.
    'GET /dealcloud/rows': (b, url) => {
      const from = parseTime(url.searchParams.get('from'));
      const to = parseTime(url.searchParams.get('to'));
      const rows = dc.rows.filter((r) => r._t >= from && r._t < to);
      return { count: rows.length, sessions: rows.map((r) => r.sessionId), midnight: rows.filter((r) => r._t % DAY === 0).length };
    },
    // More session log entries, all stamped `date` (one second: a burst, or
    // a late event stamped in the past): {date, count, user}. Their ids
    // follow the last one; the log stays in time order.
    'POST /exavault/sessions': (b) => {
      const t = parseTime(b.date);
      if (Number.isNaN(t)) throw new Error('date must be a time');
      const count = Number.isInteger(b.count) && b.count > 0 ? b.count : 1;
      const added = [];
      for (let i = 0; i < count; i++) {
        const id = String(900000 + evAdded++);
        const row = {
          type: 'sessionActivity', id,
          attributes: {
            date: new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'), ipAddress: '192.0.2.200', userName: b.user || 'burst',
            protocol: 'web', operation: 'RETR', bytesTransferred: i, fileSource: `/burst/file${id}.pdf`, fileDest: '',
            duration: 1, sessionId: `burst-${id}`,
          },
          _t: t,
        };
        ev.sessions.push(row);
        added.push(id);
      }
      ev.sessions.sort((a, b2) => a._t - b2._t || Number(a.id) - Number(b2.id));
      return { ids: added };
    },
    'GET /tenant': () => summary(),
    'POST /config': (b) => setConfig(b),
    'POST /reset': () => {
      Object.assign(state, { requests: [], faults: [], tokens: new Map(), stats: { dc_tokens: 0 } });
      state.config = { ...defaults };
      reseed();
      return summary();
    },
  };

  async function handle(req, res, body) {
    const url = new URL(req.url, 'http://sandbox');
    if (url.pathname.startsWith('/activity-control/')) {
      const op = CONTROL[`${req.method} ${url.pathname.slice('/activity-control'.length)}`];
      let response;
      try {
        if (!op) throw new Error(`No control endpoint ${req.method} ${url.pathname}.`);
        const text = body ? body.toString('utf8').trim() : '';
        response = json(200, op(text ? JSON.parse(text) : {}, url));
      } catch (err) {
        response = json(400, { error: err.message });
      }
      await send(res, response, null);
      return true;
    }
    const op = API[`${req.method} ${url.pathname}`];
    if (op) {
      await handleApi(req, res, body, url, op);
      return true;
    }
    if (url.pathname.startsWith('/dealcloud/') || url.pathname.startsWith('/exavault/')) {
      record(req, body).status = 404;
      await send(res, json(404, { message: 'No such endpoint.' }), null);
      return true;
    }
    return false;
  }

  return { handle, state };
}

module.exports = { createActivity };

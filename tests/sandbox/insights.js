'use strict';
// AvePoint Insights for the sandbox tenant: the AvePoint Graph API
// (/insights/...) and the legacy Web API (/insights/api/v1/...) on one host,
// behind one bearer token, with export jobs that end in real .zip/.xlsx files.
//
// Faults come on demand and every request is recorded (/insights-control/...).
//
// Where the documents contradict each other, the response *samples* win over
// the property tables (they are what a client meets). How each contradiction
// is served:
//  - list key: `results` on users/summary and all legacy lists, `values` elsewhere.
//  - users/summary sample says `LastSignIn` (table: lastSignIn; legacy: lastSignin).
//  - sharingLinks/summary sample spells `sensitiveLevel` on its Folder row: so do we.
//  - path spellings siteId|siteid, detailRecords|detailrecords, activity|Activity
//    are all served; other casings are 404 unless config strictPaths is false.
//  - the index names POST /insights/sharingLinks/{siteUrl}/summary, the page puts
//    siteUrl in the body of /insights/sharingLinks/summary: both are served.
//  - job ids: strings in submit answers, integers in the job paths.
//  - sites/overview riskLevel: an integer in the table, a list in the sample: both.
//  - JSON bodies: trailing commas (sites/permission sample) and single quotes
//    (legacy C# samples) are accepted, as Json.NET does; property names and query
//    names bind without regard to case; a missing comma is still a 400.
//  - `"nextLink": "1231"` in the request samples is not a token we issued: 400.
//  - Google dataSources "my drive" (a sample) means "User Drive".
//  - groupId is "required" yet skipped for all groups (exportOptionType 3): an
//    empty segment (/groups//access/export) or none (/groups/access/export).
//  - special group `c:0(.s|tru` (docs) and `c:0(.s|true` (SharePoint) both work.
//  - object activity times are ISO 8601; other Graph times yyyy-MM-ddTHH:mm:ss;
//    legacy times may end in Z (the modifiedTime sample does).
//  - legacy: every querybysite filter is marked required, only `filters` is;
//    StartPage is required with a default of 1 (defaulted); ExportOptionType is a
//    "String Array" of one integer (all forms taken); activity email and path are
//    both "required" but either may be blank (one must be set).
//  - legacy and Graph rows differ as documented: inheritType bool vs string,
//    inheritance Yes/No, loginName vs logonName, trainableClassifier list vs string.
//  - group summaries list groups with external members, most first (both samples).

const data = require('./insights-data');
const { mulberry32 } = data;
const { buildXlsx } = require('./xlsx');
const { createZip } = require('./zip');

const { MODULES, OBJECT_TYPES, SENSITIVITY, EXPOSURE, RISK, LINK_TYPES, GOOGLE_LINK_TYPES, TAGS, ANCHOR, DAY, urlKey, hashString } = data;

const REQUIRED_SCOPE = 'insights.graph.readwrite.all';
const MAX_LIST = 100;
const MAX_RECORDED = 20000;
const LANGUAGES = ['en-US', 'ja-JP', 'fr-FR'];
const M365_SOURCES = ['Microsoft Teams', 'SharePoint Online', 'OneDrive', 'Microsoft 365 Group'];
// The Google pages name "User Drive"/"Shared Drive"; one request sample sends "my drive".
const GOOGLE_SOURCES = { 'user drive': 'User Drive', 'my drive': 'User Drive', 'shared drive': 'Shared Drive' };
const LEGACY_GROUP_TYPES = { 'Distribution group': 'Distribution Group', 'Mail-enabled security group': 'Mail-enabled Security Group' };
const STATUS_TEXT = { 1: 'Export in progress.', 2: 'Successfully exported.', 3: 'Failed to export. Try again later. If the issue persists, contact the AvePoint Support team for help.' };

// ---- errors and encodings -----------------------------------------------------

class ApiError extends Error {
  constructor(status, message, headers) {
    super(message);
    this.status = status;
    this.headers = headers || {};
  }
}
const bad = (message) => new ApiError(400, message);
const notFound = (message) => new ApiError(404, message);

function decode(text, plusIsSpace) {
  try {
    return decodeURIComponent(plusIsSpace ? text.replace(/\+/g, ' ') : text);
  } catch {
    throw bad(`Malformed percent-encoding in '${text}'.`);
  }
}

// Path parameters: e-mail segments of Microsoft 365 users arrive encoded
// twice (the docs' %2523ext%2523%2540); URLs, ids and Google e-mails once.
function decodeParam(raw, times) {
  let value = raw;
  for (let i = 0; i < times; i++) value = decode(value, false);
  return value;
}

// Query strings as ASP.NET binds them: '+' is a space, names are matched
// without regard to case, a list parameter repeats once per value.
function parseQuery(raw) {
  const map = new Map();
  for (const part of (raw || '').split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq), true).toLowerCase();
    const value = eq < 0 ? '' : decode(part.slice(eq + 1), true);
    if (!map.has(name)) map.set(name, []);
    map.get(name).push(value);
  }
  return {
    one: (name) => (map.has(name.toLowerCase()) ? map.get(name.toLowerCase())[0] : undefined),
    list: (name) => map.get(name.toLowerCase()) || [],
  };
}

// The samples post JSON with trailing commas (sites/permission) and the
// legacy C# examples single-quoted JSON; Json.NET takes both, so do we.
function parseLenientJson(text) {
  let i = 0;
  const fail = () => { throw bad(`The request body is not valid JSON (at offset ${i}).`); };
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  const str = () => {
    const q = text[i++];
    let out = '';
    while (i < text.length && text[i] !== q) {
      if (text[i] === '\\') {
        const esc = text[++i];
        if (esc === 'u') { out += String.fromCharCode(parseInt(text.slice(i + 1, i + 5), 16)); i += 4; } else out += { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' }[esc] || esc;
        i++;
      } else out += text[i++];
    }
    if (text[i++] !== q) fail();
    return out;
  };
  const seq = (close, item) => {
    i++;
    const done = () => { ws(); if (text[i] === close) { i++; return true; } return false; };
    while (!done()) {
      item();
      ws();
      if (text[i] === ',') i++; else if (text[i] !== close) fail();
    }
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') { const o = {}; seq('}', () => { ws(); if (text[i] !== '"' && text[i] !== "'") fail(); const k = str(); ws(); if (text[i++] !== ':') fail(); o[k] = value(); }); return o; }
    if (c === '[') { const a = []; seq(']', () => a.push(value())); return a; }
    if (c === '"' || c === "'") return str();
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (!m) fail();
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const result = value();
  ws();
  if (i !== text.length) fail();
  return result;
}

function parseBody(buffer) {
  const text = buffer ? buffer.toString('utf8').trim() : '';
  if (!text) throw bad('The request body is required.');
  let body;
  try { body = JSON.parse(text); } catch { body = parseLenientJson(text); }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('The request body must be a JSON object.');
  // Json.NET and System.Text.Json (web defaults) bind property names without regard to case.
  const keys = new Map(Object.keys(body).map((k) => [k.toLowerCase(), k]));
  return { get: (name) => (keys.has(name.toLowerCase()) ? body[keys.get(name.toLowerCase())] : undefined) };
}

// ---- validation -------------------------------------------------------------

const present = (v) => v !== undefined && v !== null && v !== '';

function asInt(value, name, { required = false, min = -Infinity, max = Infinity, dflt } = {}) {
  if (!present(value)) {
    if (required) throw bad(`The ${name} field is required.`);
    return dflt;
  }
  const text = String(value).trim();
  // Numbers or numeric strings, as Json.NET coerces them; never lists or fractions.
  if ((typeof value !== 'number' && typeof value !== 'string') || !/^-?\d+$/.test(text)) throw bad(`The value '${value}' is not valid for ${name}.`);
  const n = Number(text);
  if (n < min || n > max) throw bad(`The ${name} field must be between ${min} and ${max}.`);
  return n;
}

function asEnum(value, name, allowed, opts = {}) {
  const n = asInt(value, name, opts);
  if (n !== undefined && !allowed.includes(n)) throw bad(`The value '${value}' is not valid for ${name}. Valid values are: ${allowed.join(', ')}.`);
  return n;
}

function asString(value, name, { required = false } = {}) {
  if (!present(value)) {
    if (required) throw bad(`The ${name} field is required.`);
    return undefined;
  }
  if (typeof value !== 'string') throw bad(`The ${name} field must be a string.`);
  return value;
}

function asList(value, name, { required = false, scalarOk = false, max = MAX_LIST } = {}) {
  let list = value;
  if (!present(list)) list = [];
  else if (!Array.isArray(list)) {
    if (!scalarOk || typeof list === 'object') throw bad(`The ${name} field must be a list.`);
    list = [list];
  }
  list = list.filter(present);
  if (list.some((v) => typeof v === 'object')) throw bad(`The ${name} field must be a list of strings.`);
  if (required && !list.length) throw bad(`The ${name} field is required.`);
  if (list.length > max) throw bad(`The ${name} field can contain at most ${max} values.`);
  return list.map(String);
}

function asUrls(value, name, opts) {
  const list = asList(value, name, opts);
  for (const u of list) if (!/^https?:\/\/[^/\s]+/i.test(u)) throw bad(`'${u}' in ${name} is not a valid URL.`);
  return list;
}

const DATE_FORMATS = {
  strict: /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/,                        // yyyy-MM-ddTHH:mm:ss
  legacy: /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,7})?Z?$/,          // the legacy samples add Z
  iso: /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$/,
};

function asDate(value, name, mode, { required = false } = {}) {
  if (!present(value)) {
    if (required) throw bad(`The ${name} field is required.`);
    return undefined;
  }
  const m = DATE_FORMATS[mode].exec(String(value));
  const hint = mode === 'strict' ? 'yyyy-MM-ddTHH:mm:ss' : 'ISO 8601';
  if (!m) throw bad(`The ${name} '${value}' is not in the format ${hint}.`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw bad(`The ${name} '${value}' is not a valid date.`);
  const offset = m[7] && m[7] !== 'Z' ? (m[7][0] === '-' ? -1 : 1) * (Number(m[7].slice(1, 3)) * 60 + Number(m[7].slice(4))) * 60000 : 0;
  return t - offset;
}

function timeRange(start, finish, names, mode, opts) {
  const from = asDate(start, names[0], mode, opts);
  const to = asDate(finish, names[1], mode, opts);
  if (from !== undefined && to !== undefined && from > to) throw bad(`The ${names[0]} must be earlier than the ${names[1]}.`);
  const end = to !== undefined ? to : from !== undefined ? Math.max(from + DAY, ANCHOR) : ANCHOR;
  return { from: from !== undefined ? from : end - 30 * DAY, to: end };
}

function asLanguage(value) {
  const lang = asString(value, 'Language');
  if (lang !== undefined && !LANGUAGES.some((l) => l.toLowerCase() === lang.toLowerCase())) throw bad(`The value '${lang}' is not valid for Language. Valid values are: ${LANGUAGES.join(', ')}.`);
  return lang || 'en-US';
}

function asDataSources(list, name, vocabulary) {
  return list.map((v) => {
    const hit = Array.isArray(vocabulary) ? vocabulary.find((s) => s.toLowerCase() === v.trim().toLowerCase()) : vocabulary[v.trim().toLowerCase()];
    if (!hit) throw bad(`The value '${v}' is not valid for ${name}.`);
    return hit;
  });
}

// The legacy ExportOptionType is documented as a "String Array" of 1..3 but sent as 2.
function asExportOption(value, allowed) {
  const v = Array.isArray(value) && value.length === 1 ? value[0] : value;
  return asEnum(v, 'ExportOptionType', allowed, { required: true });
}


// ---- paging -----------------------------------------------------------------

// Tokens are opaque base64 (with '+', '/' and '=' so clients must pass them
// back untouched) bound to the query that produced them.
const TOKEN_BYTES = 32;

function encodeToken(kind, scope, offset) {
  const b = Buffer.alloc(TOKEN_BYTES);
  const h = hashString(scope);
  b.write(kind, 0, 2, 'latin1');
  b.writeUInt32BE(offset, 2);
  b.writeUInt32BE(h, 6);
  for (let i = 10; i < TOKEN_BYTES; i++) b[i] = hashString(`${h}:${offset}:${i}`) | 0xf8;
  return b.toString('base64');
}

function decodeToken(kind, scope, token, name) {
  if (!present(token)) return 0;
  const invalid = bad(`The ${name} is not valid for this request.`);
  if (typeof token !== 'string') throw invalid;
  const b = Buffer.from(token, 'base64');
  if (b.length !== TOKEN_BYTES) throw invalid;
  const offset = b.readUInt32BE(2);
  if (encodeToken(kind, scope, offset) !== token) throw invalid;
  return offset;
}

// The sharing-links page returns a Cosmos DB continuation: a JSON string.
function encodeCosmosToken(scope, offset, pageSize) {
  const rid = encodeToken('CL', scope, offset);
  return JSON.stringify([{ token: `+RID:~${rid}#RT:${Math.ceil(offset / pageSize)}#TRC:${offset}#ISV:2#IEO:65567#QCF:8`, range: { min: '', max: 'FF' } }]);
}

function decodeCosmosToken(scope, token) {
  if (!present(token)) return 0;
  let rid;
  try {
    rid = /^\+RID:~(.+?)#RT:/.exec(JSON.parse(token)[0].token)[1];
  } catch {
    throw bad('The nextLink is not valid for this request.');
  }
  return decodeToken('CL', scope, rid, 'nextLink');
}

function pageOf(rows, offset, size) {
  const next = offset + size;
  return { items: rows.slice(offset, next), next: next < rows.length ? next : null };
}

// ---- tenant views: rows as each API shapes them ------------------------------------

function makeViews(t, state) {
  const user = (idx) => t.users[idx];
  const site = (idx) => t.sites[idx];
  const tagOf = (o) => (state.tags.has(o.idx) ? state.tags.get(o.idx) : o.tagName);
  const userMail = (u) => u.email || u.loginName;

  function findUser(key) {
    return t.userByKey.get(String(key).trim().toLowerCase());
  }

  // Who holds a permission entry, as the site permission rows name it.
  function principal(p) {
    const s = site(p.siteIdx);
    switch (p.kind) {
      case 'user': {
        const u = user(p.ref);
        return { name: u.displayName, email: userMail(u), type: 'User', members: 0, external: u.isGuest, via: null };
      }
      case 'spgroup': {
        const g = s.spGroups[p.ref];
        return { name: g.name, email: '', type: 'SharePoint Group', members: g.memberIdx.length, external: g.memberIdx.some((i) => user(i).isGuest), via: null };
      }
      case 'group': {
        const g = t.groups[p.ref];
        return { name: g.name, email: g.email || '', type: g.groupType, members: g.memberIdx.length, external: g.externalMemberCount > 0, via: null };
      }
      case 'special': {
        const g = t.specialGroups[p.ref];
        return { name: g.name, email: '', type: 'Special Group', members: 0, external: false, via: null };
      }
      default: {
        const l = t.links[p.ref];
        const via = l.type === 32 ? l.shareWithIdx.map((i) => user(i).displayName).join('; ') : l.type === 64 ? 'People in your organization' : 'Anyone with the link';
        return { name: l.logonName, email: '', type: 'Sharing Link', members: l.shareWith, external: l.shareWithIdx.some((i) => user(i).isGuest), via };
      }
    }
  }

  function sitePermissionRow(p, legacy) {
    const o = t.objects[p.objIdx];
    const s = site(p.siteIdx);
    const pr = principal(p);
    const isRoot = o.objectType === 11;
    return {
      module: MODULES[s.module],
      name: isRoot ? s.name : o.name,
      url: o.location,
      objectType: OBJECT_TYPES[o.objectType],
      principalName: pr.name,
      email: pr.email,
      principalType: pr.type,
      permission: p.permission,
      numberOfMembers: pr.members,
      isExternalUser: pr.external,
      inheritType: legacy ? !p.unique : p.unique ? 'Unique' : 'Inherited',
      linkGivingAccessTo: pr.via,
    };
  }

  const userAccessCache = new Map();
  function userAccess(u) {
    if (!userAccessCache.has(u.idx)) {
      const rows = [];
      for (const p of t.permissions) {
        const reach = t.principalsOf(p).find((r) => r.userIdx === u.idx);
        if (reach) rows.push({ p, reach });
      }
      userAccessCache.set(u.idx, rows);
    }
    return userAccessCache.get(u.idx);
  }

  function userPermissionRow({ p, reach }, legacy) {
    const o = t.objects[p.objIdx];
    const s = site(p.siteIdx);
    return {
      module: MODULES[s.module],
      siteName: s.name,
      name: o.name,
      location: o.location,
      objectType: OBJECT_TYPES[o.objectType],
      inheritType: legacy ? !p.unique : p.unique ? 'Unique' : 'Inherited',
      permission: p.permission,
      sensitivityLevel: SENSITIVITY[o.sensitivity],
      dataType: o.dataType.join(', '),
      isDirect: reach.direct,
      sensitivityLabel: o.sensitivityLabel || '',
      trainableClassifier: o.trainableClassifier || '',
      inheritedFrom: reach.via,
    };
  }

  function userSummary(u, legacy) {
    const row = {
      displayName: u.displayName, loginName: u.loginName, email: u.email, userStatus: u.userStatus,
      trustStatus: u.trustStatus, sitesWithDirectAccess: u.sitesWithDirectAccess,
    };
    // The Graph sample spells it LastSignIn (its table: lastSignIn); legacy: lastSignin.
    row[legacy ? 'lastSignin' : 'LastSignIn'] = u.lastSignIn;
    row.createdOn = u.createdOn;
    return row;
  }

  function groupSummary(g, legacy) {
    return {
      displayName: g.name, groupId: g.id, email: g.email,
      groupType: legacy ? LEGACY_GROUP_TYPES[g.groupType] || g.groupType : g.groupType,
      membershipType: g.membershipType, createdOn: g.createdOn, externalMemberCount: g.externalMemberCount,
    };
  }

  function detailRecord(o, legacy) {
    const s = site(o.siteIdx);
    const creator = user(o.creatorIdx);
    const row = {
      id: o.id, name: o.name, location: o.location, objectType: OBJECT_TYPES[o.objectType],
      createdBy: creator.displayName, module: MODULES[s.module],
    };
    if (legacy) row.inheritance = o.unique ? 'No' : 'Yes';
    else row.inheritType = o.unique ? 'Unique' : 'Inheritance';
    Object.assign(row, {
      siteName: s.name, sensitivityLevel: SENSITIVITY[o.sensitivity], exposureLevel: EXPOSURE[o.exposure],
      scannedTime: o.scannedTime, createdTime: o.createdTime, modifiedTime: o.modifiedTime, channelName: o.channelName,
      riskLevel: RISK[o.risk], privacy: s.privacy, dataType: o.dataType,
    });
    if (legacy) Object.assign(row, { trainableClassifier: o.trainableClassifier ? [o.trainableClassifier] : [], sensitivityLabel: o.sensitivityLabel });
    else Object.assign(row, { sensitivityLabel: o.sensitivityLabel, trainableClassifier: o.trainableClassifier });
    return Object.assign(row, { tagName: tagOf(o), retentionLabel: o.retentionLabel, creatorEmail: userMail(creator), webUrl: s.url });
  }

  function siteOverview(s, objects) {
    return {
      siteName: s.name, siteUrl: s.url,
      riskItemCount: objects.filter((o) => o.risk > 0).length,
      sensitiveItemCount: objects.filter((o) => o.sensitivity > 0).length,
      exposureItemCount: objects.filter((o) => o.exposure > 0).length,
    };
  }

  function linkSummary(l, legacy) {
    const o = t.objects[l.objIdx];
    const row = { id: l.id, siteId: site(l.siteIdx).id, selfId: o.selfId, linkId: l.linkId };
    row[legacy ? 'loginName' : 'logonName'] = l.logonName;
    Object.assign(row, {
      createTime: l.createTime, expireTime: l.expireTime, name: o.name, objectUrl: o.location,
      linkType: LINK_TYPES[l.type], shareBy: user(l.shareByIdx).displayName, inheritFrom: null, inheritType: 'Unique',
      shareWith: l.shareWith, linkUrl: l.linkUrl, permission: l.permission, fileType: OBJECT_TYPES[o.objectType],
    });
    // The Graph sample spells it sensitiveLevel on its Folder row: keep that rough edge.
    row[!legacy && o.objectType === 1 ? 'sensitiveLevel' : 'sensitivityLevel'] = SENSITIVITY[o.sensitivity];
    return row;
  }

  return { findUser, principal, sitePermissionRow, userAccess, userPermissionRow, userSummary, groupSummary, detailRecord, siteOverview, linkSummary, tagOf, userMail };
}

// ---- tenant queries shared by both APIs and the reports ----------------------------

function makeQueries(t, views) {
  const usersByAccess = t.users.slice().sort((a, b) => b.sitesWithDirectAccess - a.sitesWithDirectAccess || a.loginName.localeCompare(b.loginName));
  // Both summary pages list groups that have external members, most first (as the samples do).
  const externalGroups = t.groups.filter((g) => g.externalMemberCount > 0)
    .sort((a, b) => b.externalMemberCount - a.externalMemberCount || a.name.localeCompare(b.name));
  const siteRisk = new Map(t.sites.map((s) => {
    const risks = t.objectsBySite.get(s.idx).map((o) => o.risk);
    return [s.idx, risks.some((r) => r >= 0) ? Math.max(...risks) : -2];
  }));

  const siteByUrl = (u) => t.siteByUrl.get(urlKey(u));
  const sitesOf = (urls) => [...new Set(urls.map(siteByUrl).filter(Boolean))];
  const siteFilter = (urls) => (urls.length ? new Set(sitesOf(urls).map((s) => s.idx)) : null);
  const moduleFilter = (sources) => (sources.length ? new Set(sources.map((n) => Number(Object.keys(MODULES).find((k) => MODULES[k] === n)))) : null);

  function userAccessRows(u, sites, modules) {
    return views.userAccess(u).filter(({ p }) => (!sites || sites.has(p.siteIdx)) && (!modules || modules.has(t.sites[p.siteIdx].module)));
  }

  function sitePermissions(sites) {
    return sites.flatMap((s) => t.permsBySite.get(s.idx) || []);
  }

  function groupPermissions(group, sites, modules, siteLevelOnly) {
    const kind = group.special ? 'special' : 'group';
    return t.permissions.filter((p) => p.kind === kind && p.ref === group.idx
      && (!sites || sites.has(p.siteIdx)) && (!modules || modules.has(t.sites[p.siteIdx].module))
      && (!siteLevelOnly || t.objects[p.objIdx].objectType === 11));
  }

  function findGroup(id) {
    const key = String(id).trim().toLowerCase();
    const g = t.groupById.get(key);
    if (g) return g;
    const special = t.specialById.get(key);
    return special ? { ...special, special: true } : undefined;
  }

  function linksBetween(type, from, to) {
    return t.links.filter((l) => l.type === type && (from === undefined || Date.parse(l.createTime) >= from) && (to === undefined || Date.parse(l.createTime) <= to));
  }

  function overviewSites(levels) {
    return t.sites.filter((s) => !levels || levels.includes(siteRisk.get(s.idx)))
      .map((s) => views.siteOverview(s, t.objectsBySite.get(s.idx)))
      .sort((a, b) => b.riskItemCount - a.riskItemCount || a.siteUrl.localeCompare(b.siteUrl));
  }

  // Google Workspace
  const g = t.google;
  const gDrive = (file) => g.drives[file.driveIdx];
  function googleUserFiles(gu, driveIds, kinds) {
    const groups = new Set(g.groups.filter((x) => x.memberIdx.includes(gu.idx)).map((x) => x.email));
    const rows = [];
    for (const f of g.files) {
      const d = gDrive(f);
      if ((driveIds && !driveIds.has(d.id.toLowerCase())) || (kinds && !kinds.has(d.kind))) continue;
      const perm = f.perms.find((p) => p.type === 'user' && p.email === gu.email) || f.perms.find((p) => p.type === 'group' && groups.has(p.email));
      if (perm) rows.push([d.name, d.kind, f.name, f.id, perm.role, perm.type === 'group' ? perm.email : 'Direct']);
    }
    return rows;
  }
  function googleGroupFiles(group, driveIds, kinds) {
    return g.files.filter((f) => {
      const d = gDrive(f);
      return (!driveIds || driveIds.has(d.id.toLowerCase())) && (!kinds || kinds.has(d.kind)) && f.perms.some((p) => p.type === 'group' && p.email === group.email);
    }).map((f) => [group.email, gDrive(f).name, gDrive(f).kind, f.name, f.id, f.perms.find((p) => p.email === group.email).role]);
  }
  function drivePermissionRows(drives) {
    return drives.flatMap((d) => g.files.filter((f) => f.driveIdx === d.idx)
      .flatMap((f) => f.perms.map((p) => [d.name, d.id, d.kind, f.name, f.id, p.type, p.email || (p.type === 'anyone' ? 'Anyone with the link' : ''), p.role])));
  }
  function googleLinks(type, from, to) {
    return g.links.filter((l) => l.type === type && Date.parse(l.createTime) >= from && Date.parse(l.createTime) <= to)
      .map((l) => { const f = g.files[l.fileIdx]; return [f.name, f.id, gDrive(f).name, GOOGLE_LINK_TYPES[l.type], l.role, l.createTime]; });
  }

  return {
    usersByAccess, externalGroups, siteByUrl, sitesOf, siteFilter, moduleFilter, userAccessRows, sitePermissions,
    groupPermissions, findGroup, linksBetween, overviewSites, googleUserFiles, googleGroupFiles, drivePermissionRows, googleLinks,
  };
}

// ---- report files -------------------------------------------------------------

const sheetOf = (name, objects, columns) => {
  const cols = columns || (objects.length ? Object.keys(objects[0]) : ['(no rows)']);
  return { name, columns: cols, rows: objects.map((o) => cols.map((c) => o[c])) };
};
const COLS = {
  activity: ['Time (UTC)', 'User', 'Operation', 'Object Name', 'Object URL', 'IP Address', 'Client'],
  userAccess: ['user', 'module', 'siteName', 'name', 'location', 'objectType', 'inheritType', 'permission',
    'sensitivityLevel', 'dataType', 'isDirect', 'sensitivityLabel', 'trainableClassifier', 'inheritedFrom'],
  sitePermission: ['module', 'name', 'url', 'objectType', 'principalName', 'email', 'principalType', 'permission', 'numberOfMembers', 'isExternalUser', 'inheritType', 'linkGivingAccessTo'],
  groupAccess: ['group', 'module', 'name', 'url', 'objectType', 'permission', 'inheritType'],
  link: ['id', 'siteId', 'selfId', 'linkId', 'logonName', 'createTime', 'expireTime', 'name', 'objectUrl', 'linkType',
    'shareBy', 'inheritFrom', 'inheritType', 'shareWith', 'linkUrl', 'permission', 'fileType', 'sensitivityLevel'],
};

function makeReports(t, views, q) {
  const single = (sheets) => [{ name: null, sheets }];

  // opts.format (config activityFormat, see activityFormatOf): how the
  // report's workbook is served; 'xlsx' unless told.
  function activity(opts) {
    const rows = t.activities(opts).map((a) => [a.time.toISOString().slice(0, 19), a.user, a.operation, a.objectName, a.objectUrl, a.ip, a.client]);
    const events = { name: 'Activities', columns: COLS.activity, rows };
    const format = opts.format || 'xlsx';
    if (format === 'xlsx') return single([events]);
    if (format === 'csv') return [{ name: null, format: 'csv', sheets: [events] }];
    // A summary sheet first, as a reader must pass by: it has an operations column but no time.
    const summary = { name: 'Summary', columns: ['User', 'Operations', 'Objects'],
      rows: [[opts.actor || opts.subject, rows.length, new Set(rows.map((r) => r[4])).size]] };
    if (format === 'summary-only') return [{ name: null, format: 'xlsx', sheets: [summary] }];
    if (format === 'damaged') return [{ name: null, format: 'damaged', sheets: [events] }];
    return [{ name: null, format: format === 'csv+summary' ? 'csv' : 'xlsx', sheets: [summary, events] }];
  }

  // option: 1 site collection level, 2 all objects, 3 summary only (legacy and groups)
  function userAccess(users, sites, modules, option = 2) {
    const summary = sheetOf('Summary', users.map((u) => views.userSummary(u, false)));
    if (option === 3) return single([summary]);
    const access = users.flatMap((u) => q.userAccessRows(u, sites, modules)
      .filter(({ p }) => option === 2 || t.objects[p.objIdx].objectType === 11)
      .map((r) => ({ user: u.loginName, ...views.userPermissionRow(r, false) })));
    return single([summary, sheetOf('Access Report', access, COLS.userAccess)]);
  }

  function groupAccess(groups, sites, modules, option) {
    const summary = sheetOf('Summary', groups.map((g) => (g.special ? { displayName: g.name, groupId: g.id } : views.groupSummary(g, false))));
    if (option === 3) return single([summary]);
    const access = groups.flatMap((g) => q.groupPermissions(g, sites, modules, option === 1).map((p) => {
      const r = views.sitePermissionRow(p, false);
      return { group: g.name, module: r.module, name: r.name, url: r.url, objectType: r.objectType, permission: r.permission, inheritType: r.inheritType };
    }));
    return single([summary, sheetOf('Access Report', access, COLS.groupAccess)]);
  }

  // An overview workbook plus one workbook per site collection, as the legacy page describes.
  function sitePermissions(sites) {
    const overview = sites.map((s) => ({
      siteName: s.name, siteUrl: s.url, module: MODULES[s.module],
      permissionEntries: (t.permsBySite.get(s.idx) || []).length, sharingLinks: (t.linksBySite.get(s.idx) || []).length,
    }));
    return [
      { name: 'Overview', sheets: [sheetOf('Overview', overview, ['siteName', 'siteUrl', 'module', 'permissionEntries', 'sharingLinks'])] },
      ...sites.map((s) => ({ name: s.url.split('/').pop(), sheets: [sheetOf('Permissions', q.sitePermissions([s]).map((p) => views.sitePermissionRow(p, false)), COLS.sitePermission)] })),
    ];
  }

  function links(type, from, to) {
    const rows = q.linksBetween(type, from, to).map((l) => {
      const row = views.linkSummary(l, false);
      if (row.sensitiveLevel !== undefined) { row.sensitivityLevel = row.sensitiveLevel; delete row.sensitiveLevel; }
      return row;
    });
    return single([sheetOf(LINK_TYPES[type], rows, COLS.link)]);
  }

  const googleSheet = (name, columns, rows) => single([{ name, columns, rows }]);
  return {
    activity, userAccess, groupAccess, sitePermissions, links,
    googleUserAccess: (rows) => googleSheet('Access Report', ['Drive', 'Drive Type', 'File Name', 'File ID', 'Role', 'Access Via'], rows),
    googleGroupAccess: (groups, rows, option) => single([
      { name: 'Summary', columns: ['Group', 'Name', 'Members'], rows: groups.map((g) => [g.email, g.name, g.memberIdx.length]) },
      ...(option === 3 ? [] : [{ name: 'Access Report', columns: ['Group', 'Drive', 'Drive Type', 'File Name', 'File ID', 'Role'], rows }]),
    ]),
    drivePermissions: (rows) => googleSheet('Permissions', ['Drive', 'Drive ID', 'Drive Type', 'File Name', 'File ID', 'Principal Type', 'Principal', 'Role'], rows),
    googleLinks: (rows) => googleSheet('Sharing Links', ['File Name', 'File ID', 'Drive', 'Link Type', 'Role', 'Created'], rows),
  };
}

// A sheet as RFC 4180 CSV, as Excel saves "CSV UTF-8": a byte order mark,
// CRLF line ends, a field with a comma, quote or line break quoted and its
// quotes doubled.
function csvText(sheet) {
  const field = (v) => {
    if (v === null || v === undefined) return '';
    const s = Array.isArray(v) ? v.join(', ') : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `\ufeff${[sheet.columns, ...sheet.rows].map((r) => `${r.map(field).join(',')}\r\n`).join('')}`;
}

// The .zip the file endpoints stream: one .xlsx per workbook of the report;
// a workbook whose format is 'csv' is one .csv member per sheet, one whose
// format is 'damaged' an .xlsx member that is not a workbook.
function renderZip(job) {
  const date = new Date(job.submittedAt);
  const entries = [];
  for (const f of job.build()) {
    const base = f.name ? `${job.reportName}_${f.name}` : `${job.reportName}_${job.id}`;
    if (f.format === 'csv') {
      for (const s of f.sheets) {
        entries.push({ name: f.sheets.length > 1 ? `${base}_${s.name}.csv` : `${base}.csv`, data: csvText(s), date });
      }
    } else {
      const data = f.format === 'damaged' ? Buffer.from('<html><body>Report generation failed.</body></html>') : buildXlsx(f.sheets, date);
      entries.push({ name: `${base}.xlsx`, data, date, compress: false });   // an .xlsx is already deflated
    }
  }
  return createZip(entries);
}

// The reports that hold access rows (config accessFormat serves them as CSV).
const ACCESS_REPORTS = new Set(['UserAccessReport', 'GroupAccessReport', 'SitePermissionReport', 'SharingLinkReport']);

// How a user's activity report is served under config activityFormat:
// 'xlsx' (as the service does), 'csv' (a .csv member), or 'mix' by the
// user's place in the tenant's list (0-based): 0 CSV members (a summary and
// the activities), 1 an .xlsx with a summary sheet before the activities,
// 2 an .xlsx with only the summary sheet, 3 an .xlsx member that is not a
// workbook; after those even places CSV, odd ones XLSX, as 0 and 1.
function activityFormatOf(config, user) {
  const how = config.activityFormat;
  if (how !== 'mix') return how;
  const i = user.idx;
  if (i === 2) return 'summary-only';
  if (i === 3) return 'damaged';
  return i % 2 === 0 ? 'csv+summary' : 'xlsx+summary';
}

// ---- AvePoint Graph handlers ---------------------------------------------------

const graphJob = (job) => ({ json: { jobId: String(job.id), status: 200, message: '' } });
const graphPage = (key, items, nextLink) => ({ json: { [key]: items, status: 200, message: '', nextLink } });

function makeGraphHandlers(t, views, q, reports, state) {
  const pageSizeOf = (v) => asInt(v, 'pageSize', { min: 1, max: MAX_LIST, dflt: 100 });

  function lookupUser(raw) {
    const email = decodeParam(raw, 2);
    if (!email) throw bad('The email field is required.');
    const u = views.findUser(email);
    if (!u) throw notFound(`The user '${email}' was not found.`);
    return u;
  }

  function lookupGoogleUser(raw) {
    const email = decodeParam(raw, 1);
    if (!email) throw bad('The email field is required.');
    const u = t.google.userByEmail.get(email.toLowerCase());
    if (!u) throw notFound(`The Google user '${email}' was not found.`);
    return u;
  }

  // nextLink paging over a POST body: the token is bound to the other fields.
  function bodyPage(ctx, routeId, rows, scopeParts, key = 'values') {
    const body = ctx.body();
    const size = pageSizeOf(body.get('pageSize'));
    const scope = `${routeId}|${JSON.stringify(scopeParts)}`;
    const page = pageOf(rows(), decodeToken('GR', scope, body.get('nextLink'), 'nextLink'), size);
    return graphPage(key, page.items, page.next === null ? null : encodeToken('GR', scope, page.next));
  }

  // startPage/pageSize paging of the summary pages (their nextLink stays null).
  // shift: the list changed after its first page was read (groups inserted
  // ahead, counts that moved): each later page starts that many rows
  // earlier, so the last rows of a page show again at the start of the
  // next, their externalMemberCount one higher.
  // With benchGroups (make bench), the group summaries are that many: the
  // tenant's over and over, each copy with its own id and name.
  function benchRows(rows) {
    const n = state.config.benchGroups;
    if (!n || !rows.length) return rows;
    if (state.benchRows && state.benchRows.n === n && state.benchRows.of === rows.length) return state.benchRows.rows;
    const out = Array.from({ length: n }, (_, i) => {
      const r = rows[i % rows.length];
      return { ...r, groupId: `${r.groupId}-${i}`, displayName: `${r.displayName} ${i}` };
    });
    state.benchRows = { n, of: rows.length, rows: out };
    return out;
  }

  function startPage(ctx, key, rows, shift = 0) {
    const start = asInt(ctx.q.one('startPage'), 'startPage', { required: true, min: 1, max: 1e9 });
    const size = asInt(ctx.q.one('pageSize'), 'pageSize', { required: true, min: 1, max: MAX_LIST });
    const from = Math.max(0, (start - 1) * size - (start > 1 ? shift : 0));
    const page = rows.slice(from, from + size);
    const moved = start > 1 ? Math.min(shift, page.length) : 0;
    for (let i = 0; i < moved; i++) page[i] = { ...page[i], externalMemberCount: page[i].externalMemberCount + 1 };
    return graphPage(key, page, null);
  }

  function activityTimes(ctx, mode) {
    return timeRange(ctx.q.one('startTime'), ctx.q.one('finishTime'), ['startTime', 'finishTime'], mode);
  }

  const eventTypesOf = (ctx) => asList(ctx.q.list('eventTypes'), 'eventTypes');

  return {
    objectActivitiesExport(ctx) {
      const path = decodeParam(ctx.params.path, 1);
      if (!path) throw bad('The path field is required.');
      const obj = t.objectByUrl.get(urlKey(path)) || q.siteByUrl(path);
      if (!obj) throw notFound(`The object '${path}' was not found.`);
      const { from, to } = activityTimes(ctx, 'iso');
      const eventTypes = eventTypesOf(ctx);
      const url = obj.location || obj.url;
      const stable = state.config.activityHistory === 'stable';
      return graphJob(ctx.submit('ObjectActivityReport', () => reports.activity({ subject: url, objectUrl: url, start: from, finish: to, eventTypes, stable })));
    },

    userActivitiesExport(ctx) {
      const u = lookupUser(ctx.params.email);
      const { from, to } = activityTimes(ctx, 'strict');
      const eventTypes = eventTypesOf(ctx);
      const format = activityFormatOf(state.config, u);
      const stable = state.config.activityHistory === 'stable';
      return graphJob(ctx.submit('UserActivityReport', () => reports.activity({ subject: u.loginName, actor: u.loginName, start: from, finish: to, eventTypes, format, stable })));
    },

    userAccessExport(ctx) {
      const u = lookupUser(ctx.params.email);
      const sites = q.siteFilter(asUrls(ctx.q.list('siteUrls'), 'siteUrls'));
      const modules = q.moduleFilter(asDataSources(asList(ctx.q.list('dataSources'), 'dataSources', { required: true }), 'dataSources', M365_SOURCES));
      return graphJob(ctx.submit('UserAccessReport', () => reports.userAccess([u], sites, modules)));
    },

    groupAccessExport(ctx) {
      const id = decodeParam(ctx.params.groupId || '', 1);
      const option = asEnum(ctx.q.one('exportOptionType'), 'exportOptionType', [1, 2, 3], { required: true });
      const sites = q.siteFilter(asUrls(ctx.q.list('siteUrls'), 'siteUrls'));
      const modules = q.moduleFilter(asDataSources(asList(ctx.q.list('dataSources'), 'dataSources', { required: true }), 'dataSources', M365_SOURCES));
      let groups;
      if (!id) {
        if (option !== 3) throw bad('The groupId field is required unless exportOptionType is 3 (all groups, summary only).');
        groups = q.externalGroups;
      } else {
        const g = q.findGroup(id);
        if (!g) throw notFound(`The group '${id}' was not found.`);
        groups = [g];
      }
      return graphJob(ctx.submit('GroupAccessReport', () => reports.groupAccess(groups, sites, modules, option)));
    },

    sitePermissionExport(ctx) {
      const urls = asUrls(ctx.q.list('siteUrls'), 'siteUrls', { required: true });
      return graphJob(ctx.submit('SitePermissionReport', () => reports.sitePermissions(q.sitesOf(urls))));
    },

    sharingLinksExport(ctx) {
      const type = asEnum(ctx.q.one('exportLinkType'), 'exportLinkType', [32, 64, 128], { required: true });
      const { from, to } = timeRange(ctx.q.one('startTime'), ctx.q.one('finishTime'), ['startTime', 'finishTime'], 'strict', { required: true });
      return graphJob(ctx.submit('SharingLinkReport', () => reports.links(type, from, to)));
    },

    googleObjectActivitiesExport(ctx) {
      const id = decodeParam(ctx.params.id, 1);
      const file = t.google.fileById.get(id);
      if (!file) throw notFound(`The object '${id}' was not found.`);
      const { from, to } = activityTimes(ctx, 'iso');
      const eventTypes = eventTypesOf(ctx);
      const objectUrl = `https://drive.google.com/file/d/${file.id}`;
      return graphJob(ctx.submit('GoogleObjectActivityReport', () => reports.activity({ subject: file.id, objectUrl, start: from, finish: to, eventTypes, google: true })));
    },

    googleUserActivitiesExport(ctx) {
      const u = lookupGoogleUser(ctx.params.email);
      const { from, to } = activityTimes(ctx, 'strict');
      const eventTypes = eventTypesOf(ctx);
      return graphJob(ctx.submit('GoogleUserActivityReport', () => reports.activity({ subject: u.email, actor: u.email, start: from, finish: to, eventTypes, google: true })));
    },

    googleUserAccessExport(ctx) {
      const u = lookupGoogleUser(ctx.params.email);
      const drives = asList(ctx.q.list('driveIds'), 'driveIds');
      const kinds = new Set(asDataSources(asList(ctx.q.list('dataSources'), 'dataSources', { required: true }), 'dataSources', GOOGLE_SOURCES));
      const driveSet = drives.length ? new Set(drives.map((d) => d.toLowerCase())) : null;
      return graphJob(ctx.submit('GoogleUserAccessReport', () => reports.googleUserAccess(q.googleUserFiles(u, driveSet, kinds))));
    },

    googleGroupAccessExport(ctx) {
      const id = decodeParam(ctx.params.groupId || '', 1);
      const option = asEnum(ctx.q.one('exportOptionType'), 'exportOptionType', [1, 2, 3], { required: true });
      if (option === 1) throw bad('exportOptionType 1 (summary and Google drive level access report) is not supported yet.');
      const drives = asList(ctx.q.list('driveIds'), 'driveIds');
      const kinds = new Set(asDataSources(asList(ctx.q.list('dataSources'), 'dataSources', { required: true }), 'dataSources', GOOGLE_SOURCES));
      const driveSet = drives.length ? new Set(drives.map((d) => d.toLowerCase())) : null;
      let groups = t.google.groups;
      if (!id && option !== 3) throw bad('The groupId field is required unless exportOptionType is 3 (all groups, summary only).');
      if (id) {
        const g = t.google.groupByEmail.get(id.toLowerCase());
        if (!g) throw notFound(`The Google group '${id}' was not found.`);
        groups = [g];
      }
      return graphJob(ctx.submit('GoogleGroupAccessReport', () => reports.googleGroupAccess(groups, groups.flatMap((g) => q.googleGroupFiles(g, driveSet, kinds)), option)));
    },

    drivePermissionExport(ctx) {
      const ids = asList(ctx.q.list('driveIds'), 'driveIds', { required: true });
      const drives = [...new Set(ids.map((id) => t.google.driveById.get(id.toLowerCase())).filter(Boolean))];
      return graphJob(ctx.submit('DrivePermissionReport', () => reports.drivePermissions(q.drivePermissionRows(drives))));
    },

    googleSharingLinksExport(ctx) {
      const type = asEnum(ctx.q.one('exportLinkType'), 'exportLinkType', [301, 303], { required: true });
      const { from, to } = timeRange(ctx.q.one('startTime'), ctx.q.one('finishTime'), ['startTime', 'finishTime'], 'strict', { required: true });
      return graphJob(ctx.submit('GoogleSharingLinkReport', () => reports.googleLinks(q.googleLinks(type, from, to))));
    },

    usersAccess(ctx) {
      const body = ctx.body();
      const emails = asList(body.get('emails'), 'emails', { required: true });
      const urls = asUrls(body.get('siteUrls'), 'siteUrls');
      const users = emails.map((e) => views.findUser(e)).filter(Boolean);
      const sites = q.siteFilter(urls);
      const rows = () => users.flatMap((u) => q.userAccessRows(u, sites, null).map((r) => views.userPermissionRow(r, false)));
      return bodyPage(ctx, 'users/access', rows, [emails.map((e) => e.toLowerCase()), urls.map(urlKey)]);
    },

    usersSummary: (ctx) => startPage(ctx, 'results', q.usersByAccess.map((u) => views.userSummary(u, false))),
    groupsSummary: (ctx) => {
      const groups = state.config.listingReverse ? [...q.externalGroups].reverse() : q.externalGroups;
      return startPage(ctx, 'values', benchRows(groups.map((g) => views.groupSummary(g, false))), state.config.listingShift);
    },

    sharingLinksSummary(ctx) {
      const body = ctx.body();
      const siteUrl = ctx.params.siteUrl !== undefined ? decodeParam(ctx.params.siteUrl, 1) : asString(body.get('siteUrl'), 'siteUrl', { required: true });
      if (!siteUrl) throw bad('The siteUrl field is required.');
      const type = asEnum(body.get('linkType'), 'linkType', [32, 64, 128], { required: true });
      const size = pageSizeOf(body.get('pageSize'));
      const site = q.siteByUrl(siteUrl);
      const rows = site ? (t.linksBySite.get(site.idx) || []).filter((l) => l.type === type) : [];
      const scope = `sharingLinks/summary|${urlKey(siteUrl)}|${type}`;
      const page = pageOf(rows, decodeCosmosToken(scope, body.get('nextLink')), size);
      return graphPage('values', page.items.map((l) => views.linkSummary(l, false)), page.next === null ? null : encodeCosmosToken(scope, page.next, size));
    },

    sitesPermission(ctx) {
      const urls = asUrls(ctx.body().get('siteUrls'), 'siteUrls', { required: true });
      const rows = () => q.sitePermissions(q.sitesOf(urls)).map((p) => views.sitePermissionRow(p, false));
      return bodyPage(ctx, 'sites/permission', rows, urls.map(urlKey));
    },

    sitesOverview(ctx) {
      const raw = ctx.body().get('riskLevel');
      // Documented as an integer, sent as a list in the sample: take both.
      const levels = present(raw) ? (Array.isArray(raw) ? raw : [raw]).map((v) => asEnum(v, 'riskLevel', [0, 1, 2, 3, -2])) : null;
      return bodyPage(ctx, 'sites/overview', () => q.overviewSites(levels && levels.length ? levels : null), levels);
    },

    siteId(ctx) {
      const url = decodeParam(ctx.params.siteUrl, 1);
      const site = q.siteByUrl(url);
      return { json: { values: site ? [site.id] : [], status: 200, message: '', nextLink: null } };
    },

    detailRecords(ctx) {
      const id = asString(ctx.body().get('siteId'), 'siteId', { required: true });
      const site = t.siteById.get(id.toLowerCase());
      if (!site) throw notFound(`The site '${id}' was not found.`);
      const rows = () => t.objectsBySite.get(site.idx).map((o) => views.detailRecord(o, false));
      return bodyPage(ctx, 'sites/detailRecords', rows, site.id);
    },

    setTag(ctx) {
      const siteId = decodeParam(ctx.params.siteId, 1);
      const objectUrl = decodeParam(ctx.params.objectUrl, 1);
      const tag = asString(ctx.q.one('tagName'), 'tagName', { required: true });
      const site = t.siteById.get(siteId.toLowerCase());
      if (!site) throw notFound(`The site '${siteId}' was not found.`);
      const obj = t.objectByUrl.get(urlKey(objectUrl));
      if (!obj || obj.siteIdx !== site.idx) throw notFound(`The object '${objectUrl}' was not found in site '${siteId}'.`);
      const known = TAGS.find((x) => x.toLowerCase() === tag.toLowerCase());
      if (!known) throw bad(`The tag '${tag}' does not exist in Insights.`);
      state.tags.set(obj.idx, known);
      return { json: { status: 200, message: '' } };
    },

    jobStatus(ctx) {
      const job = ctx.job('graph');
      const status = jobStatus(job);
      return { json: { jobStatus: status, status: 200, message: status === 3 ? STATUS_TEXT[3] : '' } };
    },

    jobFile(ctx) {
      return { file: ctx.finishedJob('graph'), contentType: 'application/zip' };
    },
  };
}

function jobStatus(job, now = Date.now()) {
  if (now - job.submittedAt < job.durationMs) return 1;
  return job.fails ? 3 : 2;
}

// ---- legacy Web API handlers (api/v1) ----------------------------------------------

const legacyPage = (items, nextToken) => ({ json: { results: items, status: 200, message: '', content: null, nextToken } });
const legacyJob = (job, family) => ({
  json: { getFileUrl: family === 'legacy-activity' ? `api/v1/activity/export/file?id=${job.id}` : `api/v1/permission/export/get?id=${job.id}`, id: job.id },
});

const LEGACY_FILTERS = {
  module: { values: [1, 2, 3, 4] },
  objectType: { values: [1, 2, 3, 11, 12, 13, 14] },
  sensitivityLevel: { values: [0, 1, 2, 3, -2] },
  exposureLevel: { values: [1, 2, 3] },
  riskLevel: { values: [0, 1, 2, 3, -2] },
  tagName: {}, createdBy: {}, location: {}, siteName: {}, username: {}, modifiedTime: {},
};

function makeLegacyHandlers(t, views, q, reports) {
  // Token/nextToken paging; the page size field is PageSize, Top or pageSize by endpoint.
  function tokenPage(ctx, routeId, rows, scopeParts, sizeField, sizeRequired) {
    const body = ctx.body();
    const size = asInt(body.get(sizeField), sizeField, { required: sizeRequired, min: 1, max: MAX_LIST, dflt: 100 });
    const scope = `${routeId}|${JSON.stringify(scopeParts)}`;
    const page = pageOf(rows(), decodeToken('LG', scope, body.get('Token'), 'Token'), size);
    return legacyPage(page.items, page.next === null ? null : encodeToken('LG', scope, page.next));
  }

  // StartPage/PageSize paging of the summaries (nextToken is always null there).
  function summaryPage(ctx, rows) {
    const body = ctx.body();
    asLanguage(body.get('Language'));
    const start = asInt(body.get('StartPage'), 'StartPage', { min: 1, max: 1e9, dflt: 1 });
    const size = asInt(body.get('PageSize'), 'PageSize', { min: 1, max: MAX_LIST, dflt: 100 });
    return legacyPage(rows.slice((start - 1) * size, start * size), null);
  }

  function filterPredicate(id, values) {
    const lower = values.map((v) => String(v).toLowerCase());
    const site = (o) => t.sites[o.siteIdx];
    switch (id) {
      case 'module': return (o) => values.includes(site(o).module);
      case 'objectType': return (o) => values.includes(o.objectType);
      case 'sensitivityLevel': return (o) => values.includes(o.sensitivity);
      case 'exposureLevel': return (o) => values.includes(o.exposure);
      case 'riskLevel': return (o) => values.includes(o.risk);
      case 'tagName': return (o) => lower.includes(views.tagOf(o).toLowerCase());
      case 'siteName': return (o) => lower.some((v) => site(o).name.toLowerCase().includes(v));
      case 'location': return (o) => lower.some((v) => urlKey(o.location).startsWith(urlKey(v)));
      case 'createdBy': return (o) => {
        const u = t.users[o.creatorIdx];
        return lower.some((v) => [u.loginName, (u.email || '').toLowerCase(), u.displayName.toLowerCase()].includes(v));
      };
      case 'username': {
        const sites = new Set(values.map((v) => views.findUser(v)).filter(Boolean).flatMap((u) => views.userAccess(u).map((r) => r.p.siteIdx)));
        return (o) => sites.has(o.siteIdx);
      }
      default: { // modifiedTime: [from] or [from, to]
        const [from, to] = values;
        return (o) => o.modifiedTime !== '' && Date.parse(o.modifiedTime) >= from && (to === undefined || Date.parse(o.modifiedTime) <= to);
      }
    }
  }

  function parseFilters(raw, allowed, required) {
    if (!present(raw)) {
      if (required) throw bad('The filters field is required.');
      return () => true;
    }
    if (!Array.isArray(raw)) throw bad('The filters field must be a list.');
    const predicates = raw.map((f) => {
      if (!f || typeof f !== 'object' || typeof f.id !== 'string') throw bad('Each filter needs an id and values.');
      const id = allowed.find((a) => a.toLowerCase() === f.id.toLowerCase());
      if (!id) throw bad(`The filter '${f.id}' is not valid here. Valid filters are: ${allowed.join(', ')}.`);
      let values = asList(f.values, `${id} values`, { scalarOk: true });
      if (LEGACY_FILTERS[id].values) values = values.map((v) => asEnum(v, id, LEGACY_FILTERS[id].values));
      if (id === 'modifiedTime') {
        if (values.length > 2) throw bad('At most two values can be set for modifiedTime.');
        values = values.map((v) => asDate(v, 'modifiedTime', 'legacy'));
        if (values.length === 2 && values[0] > values[1]) throw bad('The first modifiedTime must be earlier than the second.');
      }
      return values.length ? filterPredicate(id, values) : () => true;
    });
    return (o) => predicates.every((p) => p(o));
  }

  function legacyUsers(list) {
    return [...new Set(list.map((e) => views.findUser(e)).filter(Boolean))];
  }

  return {
    sitePermissionExport(ctx) {
      const body = ctx.body();
      const urls = asUrls(body.get('siteUrls'), 'siteUrls', { required: true });
      asLanguage(body.get('Language'));
      return legacyJob(ctx.submit('SitePermissionReport', () => reports.sitePermissions(q.sitesOf(urls))), 'legacy-permission');
    },

    userSummary: (ctx) => summaryPage(ctx, q.usersByAccess.map((u) => views.userSummary(u, true))),
    groupSummary: (ctx) => summaryPage(ctx, q.externalGroups.map((g) => views.groupSummary(g, true))),

    userPermissionExport(ctx) {
      const body = ctx.body();
      const emails = asList(body.get('emails'), 'emails', { required: true });
      const modules = q.moduleFilter(asDataSources(asList(body.get('dataSources'), 'dataSources', { required: true }), 'dataSources', M365_SOURCES));
      const sites = q.siteFilter(asUrls(body.get('siteUrls'), 'siteUrls'));
      const option = asExportOption(body.get('ExportOptionType'), [1, 2, 3]);
      asLanguage(body.get('Language'));
      return legacyJob(ctx.submit('UserAccessReport', () => reports.userAccess(legacyUsers(emails), sites, modules, option)), 'legacy-permission');
    },

    groupPermissionExport(ctx) {
      const body = ctx.body();
      const option = asExportOption(body.get('ExportOptionType'), [1, 2, 3]);
      const ids = asList(body.get('Emails'), 'Emails', { required: option !== 3 });
      const sites = q.siteFilter(asUrls(body.get('SiteUrls'), 'SiteUrls'));
      const modules = q.moduleFilter(asDataSources(asList(body.get('dataSources'), 'dataSources', { required: true }), 'dataSources', M365_SOURCES));
      asLanguage(body.get('Language'));
      const groups = ids.length ? ids.map((id) => q.findGroup(id)).filter(Boolean) : q.externalGroups;
      return legacyJob(ctx.submit('GroupAccessReport', () => reports.groupAccess(groups, sites, modules, option)), 'legacy-permission');
    },

    linkQuery(ctx) {
      const body = ctx.body();
      const urls = asUrls(body.get('SiteUrls'), 'SiteUrls');
      const type = asEnum(body.get('LinkType'), 'LinkType', [32, 64, 128], { required: true });
      asLanguage(body.get('Language'));
      const sites = q.siteFilter(urls);
      const rows = () => t.links.filter((l) => l.type === type && (!sites || sites.has(l.siteIdx))).map((l) => views.linkSummary(l, true));
      return tokenPage(ctx, 'link/permission/query', rows, [urls.map(urlKey), type], 'PageSize', false);
    },

    linkPermissionExport(ctx) {
      const body = ctx.body();
      const type = asEnum(body.get('exportLinkType'), 'exportLinkType', [32, 64, 128], { required: true });
      const from = asDate(body.get('startTime'), 'startTime', 'legacy');
      const to = asDate(body.get('endTime'), 'endTime', 'legacy');
      if (from !== undefined && to !== undefined && from > to) throw bad('The startTime must be earlier than the endTime.');
      asLanguage(body.get('language'));
      return legacyJob(ctx.submit('SharingLinkReport', () => reports.links(type, from, to)), 'legacy-permission');
    },

    permissionStatus: (ctx) => ({ json: { status: jobStatus(ctx.job('legacy-permission')), description: STATUS_TEXT[jobStatus(ctx.job('legacy-permission'))] } }),
    permissionFile: (ctx) => ({ file: ctx.finishedJob('legacy-permission'), contentType: 'application/octet-stream' }),

    sitePermission(ctx) {
      const body = ctx.body();
      const urls = asUrls(body.get('SiteUrls'), 'SiteUrls', { required: true });
      asLanguage(body.get('Language'));
      const rows = () => q.sitePermissions(q.sitesOf(urls)).map((p) => views.sitePermissionRow(p, true));
      return tokenPage(ctx, 'Site/permission', rows, urls.map(urlKey), 'Top', false);
    },

    userPermission(ctx) {
      const body = ctx.body();
      const emails = asList(body.get('Emails'), 'Emails', { required: true });
      const urls = asUrls(body.get('SiteUrls'), 'SiteUrls');
      asLanguage(body.get('Language'));
      const sites = q.siteFilter(urls);
      const rows = () => legacyUsers(emails).flatMap((u) => q.userAccessRows(u, sites, null).map((r) => views.userPermissionRow(r, true)));
      return tokenPage(ctx, 'User/permission', rows, [emails.map((e) => e.toLowerCase()), urls.map(urlKey)], 'Top', false);
    },

    activityExport(ctx) {
      const body = ctx.body();
      const email = asString(body.get('email'), 'email');
      const path = asString(body.get('path'), 'path');
      // Both are "required", yet either "can be left blank": one of them must be set.
      if (!email && !path) throw bad('Either email or path is required.');
      const range = timeRange(body.get('startTime'), body.get('endTime'), ['startTime', 'endTime'], 'legacy');
      const eventTypes = asList(body.get('eventTypes'), 'eventTypes', { scalarOk: true });
      asLanguage(body.get('Language'));
      const u = email ? views.findUser(email) : null;
      if (email && !u) throw notFound(`The user '${email}' was not found.`);
      const obj = path ? t.objectByUrl.get(urlKey(path)) || q.siteByUrl(path) : null;
      if (path && !obj) throw notFound(`The object '${path}' was not found.`);
      const actor = u ? u.loginName : undefined;
      const objectUrl = obj ? obj.location || obj.url : undefined;
      const opts = { subject: `${actor}|${objectUrl}`, actor, objectUrl, start: range.from, finish: range.to, eventTypes };
      return legacyJob(ctx.submit('ActivityReport', () => reports.activity(opts)), 'legacy-activity');
    },

    activityStatus: (ctx) => ({ json: { status: jobStatus(ctx.job('legacy-activity')), description: STATUS_TEXT[jobStatus(ctx.job('legacy-activity'))] } }),
    activityFile: (ctx) => ({ file: ctx.finishedJob('legacy-activity'), contentType: 'application/octet-stream' }),

    queryBySite(ctx) {
      const body = ctx.body();
      const id = asString(body.get('siteId'), 'siteId', { required: true });
      const keep = parseFilters(body.get('filters'), ['objectType', 'sensitivityLevel', 'exposureLevel', 'riskLevel', 'tagName', 'createdBy', 'modifiedTime'], true);
      asLanguage(body.get('language'));
      const site = t.siteById.get(id.toLowerCase());
      if (!site) throw notFound(`The site '${id}' was not found.`);
      const rows = () => t.objectsBySite.get(site.idx).filter(keep).map((o) => views.detailRecord(o, true));
      return tokenPage(ctx, 'DetailRecord/querybysite', rows, [site.id, body.get('filters')], 'pageSize', true);
    },

    getSiteIds(ctx) {
      const urls = asUrls(ctx.body().get('siteUrls'), 'siteUrls', { required: true });
      return legacyPage(q.sitesOf(urls).map((s) => ({ siteId: s.id, siteUrl: s.url })), null);
    },

    querySiteOverview(ctx) {
      const body = ctx.body();
      const keep = parseFilters(body.get('filters'), ['module', 'sensitivityLevel', 'exposureLevel', 'riskLevel', 'createdBy', 'location'], false);
      const rows = () => t.sites.map((s) => [s, t.objectsBySite.get(s.idx).filter(keep)]).filter(([, objs]) => objs.length)
        .map(([s, objs]) => views.siteOverview(s, objs))
        .sort((a, b) => b.riskItemCount - a.riskItemCount || a.siteUrl.localeCompare(b.siteUrl));
      return tokenPage(ctx, 'DetailRecord/querysiteoverview', rows, [body.get('filters')], 'pageSize', true);
    },

    query(ctx) {
      const body = ctx.body();
      const keep = parseFilters(body.get('filters'), ['module', 'objectType', 'sensitivityLevel', 'exposureLevel', 'riskLevel', 'location', 'siteName', 'tagName', 'username'], false);
      asLanguage(body.get('language'));
      const rows = () => t.objects.filter(keep).map((o) => views.detailRecord(o, true));
      return tokenPage(ctx, 'DetailRecord/query', rows, [body.get('filters')], 'pageSize', true);
    },
  };
}

// ---- the route table ------------------------------------------------------------
// paths: every spelling the documents use (the table and the sample disagree
// on siteId/siteid, detailRecords/detailrecords, activity/Activity).
// kind: submit (starts an export job), status, file, or read.

const V1 = '/insights/api/v1';
const ROUTES = [
  // AvePoint Graph: exports
  { api: 'graph', method: 'GET', paths: ['/insights/activities/object/{path}/export'], handler: 'objectActivitiesExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/users/{email}/activities/export'], handler: 'userActivitiesExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/users/{email}/access/export'], handler: 'userAccessExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/groups/{groupId}/access/export', '/insights/groups/access/export'], handler: 'groupAccessExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/sites/permission/export'], handler: 'sitePermissionExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/sharingLinks/export'], handler: 'sharingLinksExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/google/activities/object/{id}/export'], handler: 'googleObjectActivitiesExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/google/users/{email}/activities/export'], handler: 'googleUserActivitiesExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/google/users/{email}/access/export'], handler: 'googleUserAccessExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/google/groups/{groupId}/access/export', '/insights/google/groups/access/export'], handler: 'googleGroupAccessExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/google/drives/permission/export'], handler: 'drivePermissionExport', kind: 'submit' },
  { api: 'graph', method: 'GET', paths: ['/insights/google/sharingLinks/export'], handler: 'googleSharingLinksExport', kind: 'submit' },
  // AvePoint Graph: direct retrieval
  { api: 'graph', method: 'POST', paths: ['/insights/users/access'], handler: 'usersAccess', kind: 'read', paging: 'nextLink (body)', rows: 'values' },
  { api: 'graph', method: 'GET', paths: ['/insights/users/summary'], handler: 'usersSummary', kind: 'read', paging: 'startPage+pageSize (query)', rows: 'results' },
  { api: 'graph', method: 'GET', paths: ['/insights/groups/summary'], handler: 'groupsSummary', kind: 'read', paging: 'startPage+pageSize (query)', rows: 'values' },
  {
    api: 'graph', method: 'POST', paths: ['/insights/sharingLinks/summary', '/insights/sharingLinks/{siteUrl}/summary'],
    handler: 'sharingLinksSummary', kind: 'read', paging: 'nextLink (body, a JSON string)', rows: 'values',
  },
  { api: 'graph', method: 'POST', paths: ['/insights/sites/permission'], handler: 'sitesPermission', kind: 'read', paging: 'nextLink (body)', rows: 'values' },
  { api: 'graph', method: 'POST', paths: ['/insights/sites/overview'], handler: 'sitesOverview', kind: 'read', paging: 'nextLink (body)', rows: 'values' },
  { api: 'graph', method: 'GET', paths: ['/insights/sites/{siteUrl}/siteId', '/insights/sites/{siteUrl}/siteid'], handler: 'siteId', kind: 'read', rows: 'values' },
  { api: 'graph', method: 'POST', paths: ['/insights/sites/detailRecords', '/insights/sites/detailrecords'], handler: 'detailRecords', kind: 'read', paging: 'nextLink (body)', rows: 'values' },
  // AvePoint Graph: jobs and actions
  { api: 'graph', method: 'GET', paths: ['/insights/job/{jobId}/exportstatus'], handler: 'jobStatus', kind: 'status' },
  { api: 'graph', method: 'GET', paths: ['/insights/job/{jobId}/exportfile'], handler: 'jobFile', kind: 'file' },
  { api: 'graph', method: 'PATCH', paths: ['/insights/sites/{siteId}/{objectUrl}/settag'], handler: 'setTag', kind: 'read' },
  // Legacy Web API
  { api: 'legacy', method: 'POST', paths: [`${V1}/site/permission/export`], handler: 'sitePermissionExport', kind: 'submit', family: 'legacy-permission' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/User/summary`], handler: 'userSummary', kind: 'read', paging: 'StartPage+PageSize (body)', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/user/permission/export`], handler: 'userPermissionExport', kind: 'submit', family: 'legacy-permission' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/Group/summary`], handler: 'groupSummary', kind: 'read', paging: 'StartPage+PageSize (body)', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/group/Permission/export`], handler: 'groupPermissionExport', kind: 'submit', family: 'legacy-permission' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/link/permission/query`], handler: 'linkQuery', kind: 'read', paging: 'Token/nextToken, PageSize', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/link/Permission/export`], handler: 'linkPermissionExport', kind: 'submit', family: 'legacy-permission' },
  { api: 'legacy', method: 'GET', paths: [`${V1}/permission/export/status`], handler: 'permissionStatus', kind: 'status' },
  { api: 'legacy', method: 'GET', paths: [`${V1}/permission/export/get`], handler: 'permissionFile', kind: 'file' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/Site/permission`], handler: 'sitePermission', kind: 'read', paging: 'Token/nextToken, Top', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/User/permission`], handler: 'userPermission', kind: 'read', paging: 'Token/nextToken, Top', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/activity/export`, `${V1}/Activity/export`], handler: 'activityExport', kind: 'submit', family: 'legacy-activity' },
  { api: 'legacy', method: 'GET', paths: [`${V1}/activity/export/status`], handler: 'activityStatus', kind: 'status' },
  { api: 'legacy', method: 'GET', paths: [`${V1}/activity/export/file`], handler: 'activityFile', kind: 'file' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/DetailRecord/querybysite`], handler: 'queryBySite', kind: 'read', paging: 'token/nextToken, pageSize (required)', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/DetailRecord/getSiteIds`], handler: 'getSiteIds', kind: 'read', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/DetailRecord/querysiteoverview`], handler: 'querySiteOverview', kind: 'read', paging: 'token/nextToken, pageSize (required)', rows: 'results' },
  { api: 'legacy', method: 'POST', paths: [`${V1}/DetailRecord/query`], handler: 'query', kind: 'read', paging: 'token/nextToken, pageSize (required)', rows: 'results' },
].map((r) => ({ family: r.api === 'graph' ? 'graph' : undefined, ...r, patterns: r.paths.map((p) => p.split('/').slice(1)) }));

function matchPattern(pattern, segments, strict) {
  if (pattern.length !== segments.length) return null;
  const params = {};
  let literals = 0;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p[0] === '{') params[p.slice(1, -1)] = segments[i];
    else if (p === segments[i] || (!strict && p.toLowerCase() === segments[i].toLowerCase())) literals++;
    else return null;
  }
  return { params, literals };
}

// The most specific match wins; a path known under other methods is a 405.
function findRoute(method, rawPath, strict) {
  const segments = rawPath.split('/').slice(1);
  let best = null;
  const allowed = new Set();
  for (const route of ROUTES) {
    for (const pattern of route.patterns) {
      const m = matchPattern(pattern, segments, strict);
      if (!m) continue;
      if (route.method !== method) { allowed.add(route.method); continue; }
      if (!best || m.literals > best.literals) best = { route, params: m.params, literals: m.literals };
    }
  }
  return best || (allowed.size ? { allowed: [...allowed] } : null);
}

// ---- responses ----------------------------------------------------------------

const JSON_TYPE = 'application/json; charset=utf-8';
const jsonResponse = (status, value, headers = {}) => ({ status, headers: { 'Content-Type': JSON_TYPE, ...headers }, body: Buffer.from(JSON.stringify(value)) });

// Graph errors are {"status":..,"message":..}; legacy ones keep the legacy envelope.
function errorResponse(api, status, message, headers) {
  const value = api === 'legacy' ? { results: null, status, message, content: null, nextToken: null } : { status, message };
  return jsonResponse(status, value, headers);
}

function contentDisposition(name) {
  const plain = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '\\$&');
  const star = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${plain}"; filename*=UTF-8''${star}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const writeAsync = (res, chunk) => new Promise((resolve) => res.write(chunk, () => resolve()));

// Writes a response, bent by a fault: delayed, cut off mid-body, or trickled.
async function send(res, r, fault) {
  const fx = fault || {};
  if (fx.delay_ms) await sleep(fx.delay_ms);
  if (res.destroyed) return;
  // truncate: a file cut short, sent whole as far as HTTP can tell.
  if (fx.truncate && r.status === 200 && /zip|spreadsheet/.test(r.headers['Content-Type'] || '')) {
    r = { ...r, body: r.body.subarray(0, Math.floor(r.body.length * 0.6)) };
  }
  res.writeHead(r.status, { ...r.headers, 'Content-Length': r.body.length });
  if (fx.reset) {
    await writeAsync(res, r.body.subarray(0, Math.floor(r.body.length / 2)));
    if (res.socket) res.socket.destroy();
    return;
  }
  if (fx.slow_ms) {
    const pieces = Math.max(1, Math.min(20, r.body.length));
    const size = Math.ceil(r.body.length / pieces);
    for (let off = 0; off < r.body.length && !res.destroyed; off += size) {
      await writeAsync(res, r.body.subarray(off, off + size));
      await sleep(fx.slow_ms / pieces);
    }
    if (!res.destroyed) res.end();
    return;
  }
  res.end(r.body);
}

// ---- faults -------------------------------------------------------------------

const FAULT_KEYS = ['match', 'status', 'retry_after', 'times', 'delay_ms', 'reset', 'job_fails', 'filename', 'token_revoked', 'slow_ms', 'message', 'truncate', 'body', 'bodies', 'content_type', 'huge_mb', 'redirect'];

// redirect: the answer is a 301 (or the fault's 3xx status) to this origin,
// with the request's own path and query: another server then sees what the
// client sends after it.
function redirectResponse(fault, req) {
  const status = fault.status >= 300 && fault.status < 400 ? fault.status : 301;
  return { status, headers: { Location: fault.redirect + req.url }, body: Buffer.alloc(0) };
}

function asBodies(v) {
  if (!Array.isArray(v) || v.length === 0) throw bad('bodies must be a list of strings.');
  return v.map((b) => asString(b, 'bodies'));
}

function parseFault(raw) {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('Each fault must be a JSON object.');
  const unknown = Object.keys(raw).filter((k) => !FAULT_KEYS.includes(k));
  if (unknown.length) throw bad(`Unknown fault field(s): ${unknown.join(', ')}. Known: ${FAULT_KEYS.join(', ')}.`);
  const match = raw.match === undefined ? '' : asString(raw.match, 'match') || '';
  const m = /^([A-Z]+) (.*)$/.exec(match);
  const fault = {
    match,
    method: m ? m[1] : null,
    prefix: m ? m[2] : null,
    status: asInt(raw.status, 'status', { min: 100, max: 599 }),
    retry_after: present(raw.retry_after) ? String(raw.retry_after) : undefined,
    times: asInt(raw.times, 'times', { min: 1, max: 1e6, dflt: 1 }),
    delay_ms: asInt(raw.delay_ms, 'delay_ms', { min: 0, max: 600000, dflt: 0 }),
    slow_ms: asInt(raw.slow_ms, 'slow_ms', { min: 0, max: 600000, dflt: 0 }),
    reset: raw.reset === true,
    job_fails: raw.job_fails === true,
    truncate: raw.truncate === true,
    // body: the answer's body instead of the real one (with status, or 200);
    // huge_mb: that many MiB of JSON whitespace before '{}'.
    body: raw.body === undefined ? undefined : asString(raw.body, 'body'),
    // bodies: a list of such bodies, one a request in turn, round and round
    // (pages that alternate, or shift).
    bodies: raw.bodies === undefined ? undefined : asBodies(raw.bodies),
    content_type: raw.content_type === undefined ? undefined : asString(raw.content_type, 'content_type'),
    huge_mb: asInt(raw.huge_mb, 'huge_mb', { min: 0, max: 1024, dflt: 0 }),
    redirect: raw.redirect === undefined ? undefined : asString(raw.redirect, 'redirect'),
    token_revoked: raw.token_revoked === true,
    message: raw.message === undefined ? undefined : asString(raw.message, 'message'),
    // An empty name is a name too (the client must fall back on its own).
    filename: typeof raw.filename === 'string' ? raw.filename : raw.filename === undefined ? undefined : asString(raw.filename, 'filename'),
  };
  // retry_after alone: the real answer, with that Retry-After (seconds or an HTTP-date).
  const effects = ['status', 'retry_after', 'delay_ms', 'slow_ms', 'reset', 'job_fails', 'token_revoked', 'filename', 'truncate', 'body', 'bodies', 'huge_mb', 'redirect'];
  if (!effects.some((k) => fault[k] !== undefined && fault[k] !== 0 && fault[k] !== false)) throw bad(`A fault needs at least one of: ${effects.join(', ')}.`);
  fault.remaining = fault.times;
  fault.served = 0;
  return fault;
}

// Chaos: faults drawn at a rate from a seeded generator (mulberry32), one
// kind per faulted request: what `make chaos` runs the workflows through.
const CHAOS_KINDS = ['429', '500', '503', 'reset', 'stall', 'truncated', 'job_fails', 'token_revoked'];

function parseChaos(b) {
  const kinds = b.kinds === undefined ? CHAOS_KINDS : b.kinds;
  if (!Array.isArray(kinds) || kinds.some((k) => !CHAOS_KINDS.includes(k))) throw bad(`chaos kinds: a list of ${CHAOS_KINDS.join(', ')}.`);
  const rate = Number(b.rate === undefined ? 0.1 : b.rate);
  if (!(rate >= 0 && rate <= 1)) throw bad('chaos rate: a number from 0 to 1.');
  return { rate, kinds, seed: asInt(b.seed, 'seed', { min: 0, max: 2 ** 31, dflt: 1 }), stallMs: asInt(b.stall_ms, 'stall_ms', { min: 0, max: 600000, dflt: 5000 }) };
}

function faultMatches(f, req) {
  return f.method ? req.method === f.method && req.url.startsWith(f.prefix) : req.url.includes(f.match);
}

// ---- the module -------------------------------------------------------------------

function createInsights({ verifyAccessToken, seed = 42, jobSeconds = 1.0, maxJobs = 5, hostile = false, markup = false } = {}) {
  if (typeof verifyAccessToken !== 'function') throw new TypeError('createInsights needs verifyAccessToken(req)');
  const tenant = data.createTenant(seed, { hostile, markup });
  const state = {
    // listingShift: see startPage (Graph group summaries); listingReverse:
    // the group summaries listed last group first.
    config: { jobSeconds, jobSeed: 1, maxJobs, strictPaths: true, requiredScope: REQUIRED_SCOPE, activityFormat: 'xlsx', accessFormat: 'xlsx', listingShift: 0, listingReverse: false },
    requests: [],
    faults: [],
    jobs: new Map(),
    jobRng: mulberry32(1),
    nextJobId: 4790,
    stats: { jobs_submitted: 0, job_seconds: 0, jobs_refused: 0, max_jobs_in_flight: 0, max_jobs_in_flight_all: 0 },
    chaos: null,
    tags: new Map(),
  };
  const views = makeViews(tenant, state);
  const queries = makeQueries(tenant, views);
  const reports = makeReports(tenant, views, queries);
  const handlers = { graph: makeGraphHandlers(tenant, views, queries, reports, state), legacy: makeLegacyHandlers(tenant, views, queries, reports) };

  // -- jobs --
  // The job limit is each app's (its access token's client_id): two apps
  // stand for two customer tenants, as a consultant's profiles do.
  const jobsInFlight = (now = Date.now(), client) => [...state.jobs.values()]
    .filter((j) => jobStatus(j, now) === 1 && (client === undefined || j.client === client)).length;

  // A job's length: config jobSeconds, a number, or [min, max] for lengths
  // drawn uniformly in that range, one per job in submit order, from a
  // generator seeded by jobSeed (drawn anew from the seed at each /reset
  // and each change of either field), so that a run repeats its lengths.
  const jobLength = () => {
    const s = state.config.jobSeconds;
    return Array.isArray(s) ? s[0] + (s[1] - s[0]) * state.jobRng() : s;
  };

  function submitJob(family, reportName, build, fault, client) {
    const now = Date.now();
    const inFlight = jobsInFlight(now, client);
    if (inFlight >= state.config.maxJobs) {
      state.stats.jobs_refused++;
      throw new ApiError(429, 'too many jobs', { 'Retry-After': '1' });
    }
    // config accessFormat 'csv': the access reports' sheets as .csv members;
    // 'damaged': an .xlsx member that is not a workbook.
    const format = ACCESS_REPORTS.has(reportName) && state.config.accessFormat !== 'xlsx' ? state.config.accessFormat : null;
    const built = format ? () => build().map((f) => ({ ...f, format })) : build;
    const job = { id: state.nextJobId++, client, family, reportName, build: built, submittedAt: now, durationMs: jobLength() * 1000, fails: false };
    if (fault && fault.job_fails) {
      job.fails = true;
      consumeFault(fault);
    }
    state.jobs.set(job.id, job);
    state.stats.jobs_submitted++;
    state.stats.job_seconds += job.durationMs / 1000;
    state.stats.max_jobs_in_flight = Math.max(state.stats.max_jobs_in_flight, inFlight + 1);
    state.stats.max_jobs_in_flight_all = Math.max(state.stats.max_jobs_in_flight_all, jobsInFlight(now));
    return job;
  }

  function lookupJob(ctx, family) {
    const raw = family === 'graph' ? decodeParam(ctx.params.jobId, 1) : ctx.q.one('id');
    const name = family === 'graph' ? 'jobId' : 'id';
    const id = asInt(raw, name, { required: true, min: 0, max: 2 ** 31 });
    const job = state.jobs.get(id);
    // Each API sees its own jobs: legacy activity and permission exports poll different endpoints.
    if (!job || job.family !== family) throw notFound(`The export job '${id}' was not found.`);
    return job;
  }

  function finishedJob(ctx, family) {
    const job = lookupJob(ctx, family);
    const status = jobStatus(job);
    if (status === 1) throw bad('The export job is still in progress.');
    if (status === 3) throw bad('The export job failed; there is no file to download.');
    return job;
  }

  // -- faults --
  function consumeFault(f) {
    f.remaining--;
    if (f.remaining <= 0) state.faults = state.faults.filter((x) => x !== f);
  }

  // The first live fault that matches; job_fails and filename faults wait
  // for a request that submits a job or downloads a file, and are used up then.
  function takeFault(req, route) {
    for (const f of state.faults) {
      if (!faultMatches(f, req)) continue;
      if (f.job_fails && (!route || route.kind !== 'submit')) continue;
      if (f.filename !== undefined && (!route || route.kind !== 'file')) continue;
      const deferred = (f.job_fails || f.filename !== undefined) && !f.status && !f.token_revoked;
      if (!deferred) consumeFault(f);
      return f;
    }
    return null;
  }

  // A chaos fault for this request, or null: a kind the route can take
  // (truncated: a file; job_fails: a submit), drawn at the chaos rate.
  function chaosFault(route) {
    const c = state.chaos;
    if (!c || c.rng() >= c.rate) return null;
    const fits = c.kinds.filter((k) => (k !== 'truncated' || (route && route.kind === 'file'))
      && (k !== 'job_fails' || (route && route.kind === 'submit')));
    if (!fits.length) return null;
    const kind = fits[Math.floor(c.rng() * fits.length)];
    c.counts[kind] = (c.counts[kind] || 0) + 1;
    const f = { chaos: kind };
    if (kind === '429') Object.assign(f, { status: 429, retry_after: '1' });
    else if (kind === '500') f.status = 500;
    else if (kind === '503') Object.assign(f, { status: 503, retry_after: '1' });
    else if (kind === 'reset') f.reset = true;
    else if (kind === 'stall') f.delay_ms = c.stallMs;
    else if (kind === 'truncated') f.truncate = true;
    else if (kind === 'job_fails') f.job_fails = true;
    else if (kind === 'token_revoked') f.token_revoked = true;
    return f;
  }

  // Every job created, by subject (the submit's body). A job whose answer
  // went out whole and which was not made to fail is clean: a later job for
  // the same subject was submitted again without a forced failure.
  function noteSubmit(job, body, fault) {
    const c = state.chaos;
    if (!c) return;
    const key = `${c.folder}\0${job.reportName}\0${body}`;
    const seen = c.subjects.get(key) || { jobs: 0, clean: false, again: 0 };
    seen.jobs++;
    if (seen.clean) seen.again++;
    if (!fault || !(fault.job_fails || fault.reset || fault.delay_ms)) seen.clean = true;
    c.subjects.set(key, seen);
  }

  function chaosStats() {
    const c = state.chaos;
    if (!c) return null;
    let subjects = 0;
    let repeated = 0;
    const repeatedClean = [];
    for (const [key, s] of c.subjects) {
      subjects++;
      if (s.jobs > 1) repeated++;
      if (s.again > 0 && repeatedClean.length < 1000) repeatedClean.push(key.split('\0').slice(1).join(' '));
    }
    return { rate: c.rate, seed: c.seed, kinds: c.kinds, faults: c.counts, subjects, repeated, repeated_clean: repeatedClean, ...stats() };
  }

  // -- auth --
  async function authenticate(req) {
    if (!/^Bearer\s+\S+/i.test(req.headers.authorization || '')) {
      throw new ApiError(401, 'Authorization has been denied for this request.', { 'WWW-Authenticate': 'Bearer' });
    }
    let claims = null;
    try { claims = await verifyAccessToken(req); } catch { claims = null; }
    if (!claims) throw new ApiError(401, 'Authorization has been denied for this request.', { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    const raw = claims.scope !== undefined ? claims.scope : claims.scp;
    const scopes = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(' ') : null;
    if (scopes && state.config.requiredScope && !scopes.includes(state.config.requiredScope)) {
      throw new ApiError(403, `The access token does not grant ${state.config.requiredScope}.`, { 'WWW-Authenticate': 'Bearer error="insufficient_scope"' });
    }
    return claims;
  }

  // -- API requests --
  function fileResponse(result, fault) {
    const job = result.file;
    if (!job.zip) job.zip = renderZip(job);
    let name = `${job.reportName}_${job.id}.zip`;
    if (fault && fault.filename !== undefined) {
      name = fault.filename;
      consumeFault(fault);
    }
    return { status: 200, headers: { 'Content-Type': result.contentType, 'Content-Disposition': contentDisposition(name) }, body: job.zip };
  }

  async function dispatch(req, found, rawQuery, body, fault) {
    const claims = await authenticate(req);
    if (!found) throw notFound('No HTTP resource was found that matches the request URI.');
    if (found.allowed) throw new ApiError(405, `The requested resource does not support http method '${req.method}'.`, { Allow: found.allowed.join(', ') });
    const { route, params } = found;
    let parsed;
    const ctx = {
      params,
      q: parseQuery(rawQuery),
      body: () => parsed || (parsed = parseBody(body)),
      submit: (reportName, build) => {
        const job = submitJob(route.family, reportName, build, fault, claims.client_id);
        noteSubmit(job, `${req.url} ${body ? body.toString('utf8') : ''}`, fault);
        return job;
      },
      job: (family) => lookupJob(ctx, family),
      finishedJob: (family) => finishedJob(ctx, family),
    };
    const result = handlers[route.api][route.handler](ctx);
    return result.file ? fileResponse(result, fault) : jsonResponse(result.status || 200, result.json);
  }

  function record(req, body) {
    const entry = { method: req.method, url: req.url, headers: { ...req.headers }, body: body ? body.toString('utf8') : '', time: Date.now() };
    state.requests.push(entry);
    if (state.requests.length > MAX_RECORDED) state.requests.shift();
    return entry;
  }

  async function handleApi(req, res, body) {
    const entry = record(req, body);
    const [rawPath, rawQuery] = splitTarget(req.url);
    const api = rawPath.startsWith('/insights/api/') ? 'legacy' : 'graph';
    const found = findRoute(req.method, rawPath, state.config.strictPaths);
    const fault = takeFault(req, found && found.route) || chaosFault(found && found.route);
    let response;
    try {
      if (fault && fault.redirect) {
        response = redirectResponse(fault, req);
      } else if (fault && (fault.body !== undefined || fault.bodies || fault.huge_mb)) {
        let text;
        if (fault.huge_mb) text = Buffer.concat([Buffer.alloc(fault.huge_mb * 1048576, ' '), Buffer.from('{}')]);
        else if (fault.bodies) text = Buffer.from(fault.bodies[fault.served++ % fault.bodies.length]);
        else text = Buffer.from(fault.body);
        response = { status: fault.status || 200, headers: { 'Content-Type': fault.content_type || 'application/json' }, body: text };
      } else if (fault && fault.token_revoked) {
        response = errorResponse(api, 401, 'The access token has been revoked.', { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="The access token has been revoked"' });
      } else if (fault && fault.status) {
        const headers = fault.retry_after !== undefined ? { 'Retry-After': fault.retry_after } : {};
        response = errorResponse(api, fault.status, fault.message || `Injected fault: HTTP ${fault.status}.`, headers);
      } else {
        response = await dispatch(req, found, rawQuery, body, fault);
        if (fault && fault.retry_after !== undefined) response.headers = { ...response.headers, 'Retry-After': fault.retry_after };
      }
    } catch (err) {
      if (!(err instanceof ApiError)) console.error('insights:', err);
      response = err instanceof ApiError ? errorResponse(api, err.status, err.message, err.headers) : errorResponse(api, 500, 'An error has occurred.');
    }
    entry.status = response.status;
    await send(res, response, fault);
  }

  // -- control API --
  const stats = () => ({ jobs_in_flight: jobsInFlight(), ...state.stats });

  function setConfig(body) {
    const cfg = {};
    for (const [k, v] of Object.entries(body)) {
      if (k === 'jobSeconds' && typeof v === 'number' && v >= 0) cfg.jobSeconds = v;
      else if (k === 'jobSeconds' && Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && x >= 0) && v[0] <= v[1]) cfg.jobSeconds = v;
      else if (k === 'jobSeed' && Number.isInteger(v) && v >= 0) cfg.jobSeed = v;
      else if (k === 'maxJobs' && Number.isInteger(v) && v >= 0) cfg.maxJobs = v;
      else if (k === 'strictPaths' && typeof v === 'boolean') cfg.strictPaths = v;
      else if (k === 'requiredScope' && (v === null || typeof v === 'string')) cfg.requiredScope = v;
      else if (k === 'activityFormat' && ['xlsx', 'csv', 'mix'].includes(v)) cfg.activityFormat = v;
      else if (k === 'accessFormat' && ['xlsx', 'csv', 'damaged'].includes(v)) cfg.accessFormat = v;
      else if (k === 'listingShift' && Number.isInteger(v) && v >= 0) cfg.listingShift = v;
      else if (k === 'listingReverse' && typeof v === 'boolean') cfg.listingReverse = v;
      else if (k === 'activityHistory' && ['per-request', 'stable'].includes(v)) cfg.activityHistory = v;
      else if (k === 'benchGroups' && Number.isInteger(v) && v >= 0) cfg.benchGroups = v;
      else throw bad(`Bad config field '${k}'. Known: jobSeconds (number >= 0, or [min, max]: each job's length drawn uniformly in that range), jobSeed (integer >= 0: the seed of those draws, taken anew at each /reset), maxJobs (integer >= 0), strictPaths (boolean), requiredScope (string or null), activityFormat (xlsx, csv or mix: how user activity reports are served), accessFormat (xlsx, csv or damaged: how access reports are served), listingShift (integer >= 0: Graph group summary pages after the first start that many rows earlier, those rows changed), listingReverse (boolean: Graph group summaries listed last group first), activityHistory (per-request or stable: a user's activity drawn anew for each range asked, or the same history whatever the range), benchGroups (integer >= 0: Graph group summaries listed that many times over, for make bench; 0: as the tenant has them).`);
    }
    Object.assign(state.config, cfg);
    if ('jobSeconds' in cfg || 'jobSeed' in cfg) state.jobRng = mulberry32(state.config.jobSeed);
    return state.config;
  }

  function resetStats() {
    Object.assign(state.stats, { jobs_submitted: 0, job_seconds: 0, jobs_refused: 0, max_jobs_in_flight: jobsInFlight(), max_jobs_in_flight_all: jobsInFlight() });
    return stats();
  }

  const CONTROL = {
    'GET /faults': () => state.faults,
    'POST /faults': (b) => {
      const list = (Array.isArray(b) ? b : [b]).map(parseFault);
      state.faults.push(...list);
      return state.faults;
    },
    'DELETE /faults': () => { state.faults = []; return state.faults; },
    'GET /requests': (b, q) => state.requests.filter((r) => !q.one('match') || r.url.includes(q.one('match'))),
    'DELETE /requests': () => { state.requests = []; return []; },
    'GET /stats': () => stats(),
    'POST /stats/reset': () => resetStats(),
    'POST /chaos': (b) => {
      const c = parseChaos(b);
      state.chaos = { ...c, rng: mulberry32(c.seed), counts: {}, subjects: new Map(), folder: 0 };
      return chaosStats();
    },
    'GET /chaos': () => chaosStats(),
    // A new output folder: its subjects are exported anew, not again.
    'POST /chaos/folder': () => { if (state.chaos) state.chaos.folder++; return {}; },
    'DELETE /chaos': () => { state.chaos = null; return {}; },
    'GET /config': () => state.config,
    'POST /config': (b) => setConfig(b),
    'POST /reset': () => {
      Object.assign(state, { requests: [], faults: [], jobs: new Map(), jobRng: mulberry32(state.config.jobSeed) });
      state.tags.clear();
      return resetStats();
    },
    'GET /routes': () => ROUTES.map(({ api, method, paths, kind, paging, rows }) => ({ api, method, paths, kind, paging: paging || null, rows: rows || null })),
    'GET /tenant': () => tenantSummary(tenant),
  };

  async function handleControl(req, res, body) {
    const [rawPath, rawQuery] = splitTarget(req.url);
    const op = CONTROL[`${req.method} ${rawPath.slice('/insights-control'.length)}`];
    let response;
    try {
      if (!op) throw notFound(`No control endpoint ${req.method} ${rawPath}.`);
      const text = body ? body.toString('utf8').trim() : '';
      const parsed = text ? JSON.parse(text) : {};
      response = jsonResponse(200, op(parsed, parseQuery(rawQuery)));
    } catch (err) {
      response = jsonResponse(err.status || 400, { error: err.message });
    }
    await send(res, response, null);
  }

  async function handle(req, res, body) {
    const path = splitTarget(req.url)[0];
    if (path === '/insights-control' || path.startsWith('/insights-control/')) {
      await handleControl(req, res, body);
      return true;
    }
    if (path === '/insights' || path.startsWith('/insights/')) {
      await handleApi(req, res, body);
      return true;
    }
    return false;
  }

  return { handle, tenant, state, routes: ROUTES };
}

function splitTarget(url) {
  const i = url.indexOf('?');
  return i < 0 ? [url, ''] : [url.slice(0, i), url.slice(i + 1)];
}

// Names a test can use without reaching into the module.
function tenantSummary(t) {
  const pick = (list, n) => list.slice(0, n);
  return {
    counts: {
      users: t.users.length, guests: t.users.filter((u) => u.isGuest).length, groups: t.groups.length,
      groupsWithExternalMembers: t.groups.filter((g) => g.externalMemberCount > 0).length, sites: t.sites.length,
      objects: t.objects.length, sharingLinks: t.links.length, permissionEntries: t.permissions.length,
      googleUsers: t.google.users.length, googleGroups: t.google.groups.length, googleDrives: t.google.drives.length,
      googleFiles: t.google.files.length, googleLinks: t.google.links.length,
    },
    powerUsers: [t.users[0].loginName, t.users.find((u) => u.isGuest).loginName],
    guests: t.users.filter((u) => u.isGuest).map((u) => ({ loginName: u.loginName, upn: u.upn, email: u.email })),
    users: pick(t.users, 10).map((u) => ({ loginName: u.loginName, email: u.email, displayName: u.displayName })),
    groups: pick(t.groups, 5).map((g) => ({ id: g.id, name: g.name, externalMemberCount: g.externalMemberCount })),
    specialGroups: t.specialGroups.map((g) => g.id),
    sites: pick(t.sites, 6).map((s) => ({ id: s.id, url: s.url, name: s.name, module: MODULES[s.module], objects: t.objectsBySite.get(s.idx).length, links: (t.linksBySite.get(s.idx) || []).length })),
    objects: pick(t.objectsBySite.get(0), 6).map((o) => o.location),
    google: {
      users: pick(t.google.users, 3).map((u) => u.email),
      groups: pick(t.google.groups, 3).map((g) => g.email),
      sharedDrives: pick(t.google.drives, 3).map((d) => d.id),
      files: pick(t.google.files, 3).map((f) => f.id),
    },
    tags: TAGS,
  };
}

// parseFault, faultMatches and send serve the other vendors' routes too.
module.exports = { createInsights, ROUTES, parseFault, faultMatches, redirectResponse, send };

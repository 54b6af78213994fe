'use strict';
// The sandbox tenant behind the Insights APIs: users (with guests), groups,
// sites, objects, permissions, sharing links and a Google Workspace, all
// derived from one seed so every run and every test sees the same tenant.
//
// Sizes are chosen so each paging style crosses several pages at its default
// page size (see the `hot` sites and power users below).

const TENANT = 'sandbox.onmicrosoft.com';
const SP_HOST = 'https://sandbox.sharepoint.com';
const MY_HOST = 'https://sandbox-my.sharepoint.com';
const GW_DOMAIN = 'sandbox-workspace.example';
const ANCHOR = Date.UTC(2025, 5, 30);          // "now" of the seeded history
const DAY = 86400000;

const SIZES = { members: 330, guests: 20, groups: 250, sites: 230, gUsers: 80, gGroups: 30, drives: 40, gFiles: 500, gLinks: 300 };

// ---- seeded randomness --------------------------------------------------

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function makeRng(seed) {
  const next = mulberry32(seed);
  const rng = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chars: (n, alphabet) => Array.from({ length: n }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''),
    hex: (n) => rng.chars(n, '0123456789abcdef'),
    guid: () => `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-${rng.pick('89ab')}${rng.hex(3)}-${rng.hex(12)}`,
    time: (from, to) => new Date(from + Math.floor(next() * (to - from))),
    sample: (arr, n) => {
      const copy = arr.slice();
      const out = [];
      while (out.length < n && copy.length) out.push(copy.splice(Math.floor(next() * copy.length), 1)[0]);
      return out;
    },
    weighted: (pairs) => {
      let r = next() * pairs.reduce((s, p) => s + p[1], 0);
      for (const [value, w] of pairs) if ((r -= w) < 0) return value;
      return pairs[pairs.length - 1][0];
    },
  };
  return rng;
}

// "2024-02-22T02:28:40Z": the seconds-precision UTC form the samples show.
const isoSeconds = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
// "2021-08-23T03:39:55": the zone-less form of createdOn fields.
const localSeconds = (d) => d.toISOString().slice(0, 19);

// ---- vocabularies -------------------------------------------------------

const FIRST = ['Adele', 'Megan', 'Alex', 'Diego', 'Grady', 'Henrietta', 'Isaiah', 'Johanna', 'Joni', 'Lee', 'Lidia',
  'Lynne', 'Miriam', 'Nestor', 'Patti', 'Pradeep', 'Irvin', 'Allan', 'Christie', 'Debra', 'Enrico', 'Emily', 'Raul',
  'Sanjay', 'Wei', 'Yuki', 'Amara', 'Bjorn', 'Chloe', 'Dmitri', 'Elena', 'Farah', 'Gustavo', 'Hana', 'Ivan', 'Jamal',
  'Kenji', 'Laila', 'Mateo', 'Nadia', 'Oscar', 'Priya', 'Quentin', 'Rosa', 'Samir', 'Tara', 'Ulrich', 'Valeria',
  'Wen', 'Ximena', 'Yusuf', 'Zara', 'Aiko', 'Bruno', 'Carmen', 'Dev', 'Esther', 'Felix', 'Greta', 'Hugo'];
const LAST = ['Vance', 'Bowen', 'Wilber', 'Soto', 'Archie', 'Cahill', 'Langer', 'Lauer', 'Sherman', 'Gu', 'Holloway',
  'Robbins', 'Graham', 'Wilke', 'Fernandez', 'Gupta', 'Sayers', 'Deyoung', 'Cline', 'Berg', 'Groves', 'Braun',
  'Rodriguez', 'Patel', 'Zhang', 'Tanaka', 'Okafor', 'Lindqvist', 'Martin', 'Volkov', 'Rossi', 'Haddad', 'Silva',
  'Kim', 'Petrov', 'Williams', 'Sato', 'Hassan', 'Garcia', 'Novak', 'Larsen', 'Iyer', 'Dubois', 'Moreno', 'Khan',
  'Nguyen', 'Schmidt', 'Costa', 'Chen', 'Lopez', 'Aydin', 'Mensah', 'Kowalski', 'Ferreira', 'Reyes', 'Singh',
  'Weber', 'Becker', 'Jensen', 'Murphy'];
const GUEST_DOMAINS = ['contoso.com', 'fabrikam.com', 'northwind.example', 'adatum.example', 'litware.example', 'tailspin.example'];
// Guests that tests can name; the second keeps the docs' lower-case "#ext#".
const FIXED_GUESTS = [
  { first: 'Jane', last: 'Doe', email: 'jane@contoso.com', ext: '#EXT#' },
  { first: 'Insights', last: 'Tester001', email: 'insightstester001@jasoninsightstest.onmicrosoft.com', ext: '#ext#' },
  { first: 'John', last: 'Smith', email: 'john.smith@fabrikam.com', ext: '#EXT#' },
  { first: 'Pat', last: "O'Neil", email: "pat.o'neil@northwind.example", ext: '#EXT#' },
];
const DEPTS = ['Finance', 'HR', 'Legal', 'Sales', 'Marketing', 'Engineering', 'Support', 'Retail', 'Operations',
  'Research', 'Procurement', 'Compliance', 'Facilities', 'Design', 'Security', 'Product', 'Training', 'Executive'];
const TOPICS = ['Project Phoenix', 'Quarterly Review', 'Partners', 'Onboarding', 'Vendors', 'Field Team', 'Audit 2024',
  'Budget', 'Roadmap', 'Launch', 'Contracts', 'Intranet', 'Hiring', 'Events', 'Data Room', 'Playbooks'];
const GROUP_TYPES = [['Microsoft 365 Group', 40], ['Security Group', 30], ['Distribution group', 15], ['Mail-enabled security group', 15]];
const MODULES = { 1: 'Microsoft Teams', 2: 'SharePoint Online', 3: 'OneDrive', 4: 'Microsoft 365 Group' };
const OBJECT_TYPES = { 1: 'Folder', 2: 'File', 3: 'Item', 11: 'Site Collection', 12: 'Site', 13: 'List', 14: 'Library' };
const SENSITIVITY = { 0: 'Not sensitive', 1: 'Low', 2: 'Medium', 3: 'High', '-2': 'N/A' };
const EXPOSURE = { 0: 'N/A', 1: 'Low', 2: 'Medium', 3: 'High' };
const RISK = { 0: 'No risk', 1: 'Low', 2: 'Medium', 3: 'High', '-2': 'N/A' };
const LINK_TYPES = { 32: 'Links for Specific External Users', 64: 'Organization Links', 128: 'Anyone Links' };
const GOOGLE_LINK_TYPES = { 301: 'Target audience link', 303: 'Anyone link' };
const TAGS = ['FalsePositive', 'In Progress', 'Reviewed', 'Escalated', 'Confidential Review'];
const DATA_TYPES = ['U.S. Social Security Number (SSN)', 'Credit Card Number', 'ABA Routing Number',
  'U.S. Individual Taxpayer Identification Number (ITIN)', 'U.S. / U.K. Passport Number', 'EU Debit Card Number', 'IP Address'];
const LABELS = ['General', 'Confidential', 'Highly Confidential', 'Public'];
const CLASSIFIERS = ['Agreements', 'Resume', 'Source Code', 'Tax', 'Finance', 'Threat'];
const RETENTION = ['Keep 7 years', 'Delete after 3 years', 'Record'];
const PERMISSIONS = ['Full Control', 'Edit', 'Contribute', 'Read', 'Design'];
const FILE_STEMS = ['report', 'budget', 'plan', 'notes', 'minutes', 'contract', 'invoice', 'roadmap', 'design',
  'policy', 'payroll', 'forecast', 'proposal', 'summary', 'checklist', 'presentation'];
const EXTENSIONS = ['docx', 'xlsx', 'pptx', 'pdf', 'txt', 'csv', 'one', 'png'];
// Names that exercise URL encoding and XML escaping downstream.
const ODD_NAMES = ['50% budget.xlsx', 'C# notes.txt', 'Q1 report (final).docx', 'Résumé – Zoë.docx', 'R&D plan.pptx',
  'U.S. Personally Identifiable Information (PII) Data-High.docx'];
const SPECIAL_GROUPS = [
  { id: 'c:0(.s|true', aliases: ['c:0(.s|tru'], name: 'Everyone' },
  { id: 'c:0-.f|rolemanager|spo-grid-all-users', aliases: [], name: 'Everyone except external users' },
  { id: 'c:0!.s|windows', aliases: [], name: 'All Users (windows)' },
  { id: 'c:0!.s|forms%3amembership', aliases: [], name: 'All Users (membership)' },
];
const M365_OPERATIONS = ['FileAccessed', 'FileModified', 'FileDownloaded', 'FileUploaded', 'FileDeleted', 'FileRenamed',
  'FileMoved', 'FolderCreated', 'ListViewed', 'ListItemViewed', 'ListItemUpdated', 'PageViewed', 'SharingSet',
  'SharingInvitationCreated', 'AnonymousLinkCreated', 'CompanyLinkCreated', 'SecureLinkCreated', 'AddedToGroup'];
const GOOGLE_OPERATIONS = ['create', 'edit', 'view', 'download', 'upload', 'delete', 'trash', 'untrash', 'rename',
  'move', 'label_added', 'label_removed', 'change_user_access', 'change_document_visibility'];

// Texts a spreadsheet would run as formulas (OWASP's CSV injection
// cases): with --hostile the tenant's group names and object titles, and
// the DealCloud and ExaVault rows' text fields, start with one of them.
const HOSTILE = ["=cmd|' /C calc'!A0", '+1', '-2+3', '@SUM(A1)', '\tx', '\rx'];
const hostile = (i, text) => `${HOSTILE[i % HOSTILE.length]}${text}`;
// Markup a page would run or be broken by: with --markup the tenant's group
// names and object titles end with one of them.
const MARKUP = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', '</td></tr></table><h1>owned</h1>',
  '&amp; &lt;b&gt; &#x3c;', "' onmouseover='alert(3)"];
const markup = (i, text) => `${text} ${MARKUP[i % MARKUP.length]}`;

const slug = (s) => s.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '');

// ---- generators -----------------------------------------------------------

function uniqueName(taken, base) {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}${n}`;
  taken.add(name);
  return name;
}

function makeMember(rng, taken, i) {
  const first = i === 0 ? 'Adele' : i === 1 ? 'Megan' : rng.pick(FIRST);
  const last = i === 0 ? 'Vance' : i === 1 ? 'Bowen' : rng.pick(LAST);
  const local = uniqueName(taken, `${slug(first)}.${slug(last)}`);
  const upn = `${local}@${TENANT}`;
  // Mixed-case e-mail next to a lower-case login name, as in the samples;
  // a few unlicensed accounts have no e-mail at all.
  const email = rng.chance(0.04) ? '' : `${first}.${last.replace(/[^A-Za-z]/g, '')}${local.replace(/^\D+/, '')}@${TENANT}`;
  return { first, last, displayName: `${first} ${last}`, upn, email, isGuest: false };
}

function makeGuest(rng, taken, fixed) {
  const first = fixed ? fixed.first : rng.pick(FIRST);
  const last = fixed ? fixed.last : rng.pick(LAST);
  const email = fixed ? fixed.email : `${uniqueName(taken, `${slug(first)}.${slug(last)}`)}@${rng.pick(GUEST_DOMAINS)}`;
  const upn = `${email.replace('@', '_')}${fixed ? fixed.ext : '#EXT#'}@${TENANT}`;
  return { first, last, displayName: `${first} ${last}`, upn, email, isGuest: true };
}

function makeUsers(rng) {
  const taken = new Set();
  const members = Array.from({ length: SIZES.members }, (_, i) => makeMember(rng, taken, i));
  members[5] = { ...members[5], displayName: 'R&D <Service> Account', email: '' };
  members[6] = { ...members[6], displayName: "Seán O'Brien-Zoë" };
  const guests = Array.from({ length: SIZES.guests }, (_, i) => makeGuest(rng, taken, FIXED_GUESTS[i]));
  // Interleave guests so every summary page holds some.
  const users = [];
  let g = 0;
  members.forEach((m, i) => {
    users.push(m);
    if (i % 16 === 3 && g < guests.length) users.push(guests[g++]);
  });
  while (g < guests.length) users.push(guests[g++]);
  return users.map((u, idx) => ({
    ...u,
    idx,
    id: rng.guid(),
    loginName: u.upn.toLowerCase(),
    userStatus: rng.chance(0.15) ? 'Blocked' : 'Active',
    trustStatus: u.isGuest && rng.chance(0.5) ? 'Trusted' : rng.chance(0.1) ? 'Trusted' : 'Not Trusted',
    lastSignIn: rng.weighted([['Less than 90 Days', 50], ['More than 90 Days', 15], ['More than 180 Days', 15], ['None', 15], ['N/A', 5]]),
    createdOn: localSeconds(rng.time(Date.UTC(2019, 0, 1), ANCHOR - 30 * DAY)),
    sitesWithDirectAccess: 0,
  }));
}

function makeGroups(rng, users) {
  const members = users.filter((u) => !u.isGuest);
  const guests = users.filter((u) => u.isGuest);
  const taken = new Set();
  return Array.from({ length: SIZES.groups }, (_, idx) => {
    const groupType = rng.weighted(GROUP_TYPES);
    const name = uniqueName(taken, `${rng.pick(DEPTS)} ${rng.pick(TOPICS)}`);
    const memberIdx = rng.sample(members, rng.int(3, 20)).map((u) => u.idx);
    if (idx % 5 === 0 && !memberIdx.includes(0)) memberIdx.push(0);     // the power user sits in many groups
    if (rng.chance(0.88)) memberIdx.push(...rng.sample(guests, rng.int(1, 5)).map((u) => u.idx));
    return {
      idx, name, groupType, memberIdx,
      id: rng.guid(),
      email: groupType === 'Security Group' ? null : `${slug(name)}@${TENANT}`,
      membershipType: rng.chance(0.2) ? 'Dynamic' : 'Assigned',
      createdOn: localSeconds(rng.time(Date.UTC(2020, 0, 1), ANCHOR - 10 * DAY)),
      externalMemberCount: memberIdx.filter((i) => users[i].isGuest).length,
    };
  });
}

function siteKind(rng, idx) {
  if (idx <= 1) return 1;
  if (idx === 2) return 3;
  return rng.weighted([[1, 35], [2, 30], [4, 10], [3, 25]]);
}

function makeSites(rng, users, groups) {
  const taken = new Set();
  const owners = rng.sample(users.filter((u) => !u.isGuest && u.idx !== 0), SIZES.sites);
  const m365 = groups.filter((g) => g.groupType === 'Microsoft 365 Group');
  return Array.from({ length: SIZES.sites }, (_, idx) => {
    const module = siteKind(rng, idx);
    const site = { idx, id: rng.guid(), module, channels: [], privacy: '', groupIdx: -1, spGroups: null };
    if (module === 3) {
      const owner = idx === 2 ? users[0] : owners[idx];
      site.ownerIdx = owner.idx;
      site.name = owner.displayName;
      site.url = `${MY_HOST}/personal/${owner.upn.toLowerCase().replace(/[@.']/g, '_')}`;
      return site;
    }
    site.name = idx === 0 ? 'Retail' : idx === 1 ? 'SalesandMarketing' : uniqueName(taken, `${rng.pick(DEPTS)} ${rng.pick(TOPICS)}`);
    taken.add(site.name);
    const path = module === 2 && rng.chance(0.3) ? 'teams' : 'sites';
    site.url = `${SP_HOST}/${path}/${slug(site.name)}`;
    if (module === 1 || module === 4) {
      site.groupIdx = rng.pick(m365).idx;
      site.privacy = rng.chance(0.6) ? 'Private' : 'Public';
    }
    if (module === 1) site.channels = ['General', ...rng.sample(['Planning', 'Shared channel', 'Ops', 'Design Review', 'Announcements'], rng.int(1, 3))];
    return site;
  });
}

// SharePoint groups per site; the power users make users/access page.
function addSpGroups(rng, sites, users) {
  const members = users.filter((u) => !u.isGuest);
  const guests = users.filter((u) => u.isGuest);
  for (const site of sites) {
    if (site.module === 3) continue;
    const owners = rng.sample(members, rng.int(1, 3)).map((u) => u.idx);
    const memberIdx = rng.sample(members, rng.int(3, 15)).map((u) => u.idx);
    const visitors = rng.sample(users, rng.int(0, 10)).map((u) => u.idx);
    if (!memberIdx.includes(0)) memberIdx.push(0);
    if (rng.chance(0.6)) visitors.push(guests[0].idx);
    site.spGroups = [
      { role: 'Owners', permission: 'Full Control', memberIdx: owners },
      { role: 'Members', permission: 'Edit', memberIdx },
      { role: 'Visitors', permission: 'Read', memberIdx: visitors },
    ].map((g) => ({ ...g, name: `${site.name} ${g.role}` }));
  }
}

function objectCount(rng, site) {
  return [450, 300, 260][site.idx] || rng.int(6, 28);
}

function makeFileName(rng, usedNames) {
  if (rng.chance(0.03)) {
    const odd = rng.pick(ODD_NAMES);
    if (!usedNames.has(odd)) { usedNames.add(odd); return odd; }
  }
  return uniqueName(usedNames, `${rng.pick(FILE_STEMS)}-${rng.int(1, 999)}`) + `.${rng.pick(EXTENSIONS)}`;
}

function classify(rng, obj) {
  const sensitivity = rng.weighted([[0, 40], [1, 20], [2, 15], [3, 10], [-2, 15]]);
  const exposure = rng.weighted([[0, 30], [1, 30], [2, 25], [3, 15]]);
  obj.sensitivity = sensitivity;
  obj.exposure = exposure;
  obj.risk = sensitivity === -2 ? -2 : sensitivity === 0 || exposure === 0 ? 0 : Math.min(3, Math.ceil((sensitivity + exposure) / 2));
  obj.dataType = sensitivity > 0 ? rng.sample(DATA_TYPES, rng.int(1, 3)) : [];
  obj.sensitivityLabel = rng.weighted([[null, 30], ['', 30], [rng.pick(LABELS), 40]]);
  obj.trainableClassifier = rng.weighted([[null, 30], ['', 40], [rng.pick(CLASSIFIERS), 30]]);
  obj.retentionLabel = rng.weighted([[null, 50], ['', 30], [rng.pick(RETENTION), 20]]);
  obj.tagName = rng.chance(0.1) ? rng.pick(TAGS) : '';
}

function makeObject(rng, site, users, fields) {
  const creator = site.module === 3 ? users[site.ownerIdx] : rng.pick(users);
  const created = rng.time(Date.UTC(2021, 0, 1), ANCHOR - 5 * DAY);
  const obj = {
    id: rng.guid(), selfId: rng.guid(), siteIdx: site.idx, creatorIdx: creator.idx,
    createdTime: isoSeconds(created),
    modifiedTime: rng.chance(0.1) ? '' : isoSeconds(rng.time(created.getTime(), ANCHOR)),
    scannedTime: isoSeconds(rng.time(ANCHOR - 60 * DAY, ANCHOR)),
    unique: rng.chance(site.idx <= 2 ? 0.4 : 0.15),
    channelName: '',
    ...fields,
  };
  classify(rng, obj);
  return obj;
}

function makeSiteObjects(rng, site, users, objects) {
  const count = objectCount(rng, site);
  const lib = site.module === 3 ? 'documents' : 'shared documents';
  const libName = site.module === 3 ? 'Documents' : 'Shared Documents';
  const add = (fields) => { const o = makeObject(rng, site, users, fields); o.idx = objects.length; objects.push(o); return o; };
  add({ name: site.name, location: site.url, objectType: 11, unique: true });
  add({ name: libName, location: `${site.url}/${lib}`, objectType: 14 });
  const folders = site.channels.length ? site.channels : rng.sample(['Policies', 'Archive', 'Projects', 'Templates'], 2);
  for (const f of folders) add({ name: f, location: `${site.url}/${lib}/${f.toLowerCase()}`, objectType: 1, channelName: site.channels.length ? f : '' });
  const hasList = site.module !== 3 && rng.chance(0.5);
  if (hasList) add({ name: 'Issue Tracker', location: `${site.url}/lists/issue tracker`, objectType: 13 });
  const used = new Set();
  for (let n = objects.filter((o) => o.siteIdx === site.idx).length; n < count; n++) {
    if (hasList && rng.chance(0.08)) {
      add({ name: `Issue ${n}`, location: `${site.url}/lists/issue tracker/${n}_.000`, objectType: 3 });
      continue;
    }
    const folder = rng.pick(folders);
    const name = makeFileName(rng, used);
    add({ name, location: `${site.url}/${lib}/${folder.toLowerCase()}/${name.toLowerCase()}`, objectType: 2, channelName: site.channels.length ? folder : '' });
  }
}

function linkKindWord(type, permission) {
  if (type === 32) return 'flexible';
  const edit = permission === 'Edit' ? 'edit' : 'view';
  return type === 64 ? `organization${edit}` : `anonymous${edit}`;
}

// https://host/:w:/sites/name/<token>, the shape SharePoint hands out.
function linkUrl(rng, site, obj) {
  const kind = obj.objectType === 1 ? 'f' : 'w';
  const token = rng.chars(46, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
  return `${site.url.replace(/\/(sites|teams|personal)\//, `/:${kind}:/$1/`)}/${token}`;
}

function linkPlan(rng, site) {
  if (site.idx === 0) return [[32, 270], [64, 30], [128, 30]];
  if (site.idx === 1) return [[32, 40], [64, 20], [128, 20]];
  return [[32, rng.int(0, 3)], [64, rng.int(0, 2)], [128, rng.int(0, 2)]];
}

function makeLinks(rng, sites, objects, users) {
  const links = [];
  const bySite = groupBy(objects.filter((o) => o.objectType === 1 || o.objectType === 2), (o) => o.siteIdx);
  const guests = users.filter((u) => u.isGuest);
  for (const site of sites) {
    const candidates = bySite.get(site.idx) || [];
    if (!candidates.length) continue;
    for (const [type, count] of linkPlan(rng, site)) {
      for (let n = 0; n < count; n++) {
        const obj = rng.pick(candidates);
        obj.unique = true;
        const permission = rng.chance(0.5) ? 'Edit' : 'View';
        const linkId = rng.guid();
        const created = rng.time(Date.UTC(2021, 5, 1), ANCHOR);
        // Specific links name their people; the first guest is on many of them.
        const shareWithIdx = type === 32 ? rng.sample(users, rng.int(1, 3)).map((u) => u.idx) : [];
        if (type === 32 && site.idx === 0 && n % 2 === 0 && !shareWithIdx.includes(guests[0].idx)) shareWithIdx.push(guests[0].idx);
        links.push({
          idx: links.length, type, permission, linkId, siteIdx: site.idx, objIdx: obj.idx, shareWithIdx,
          id: `${obj.selfId},${rng.guid()}`,
          logonName: `sharinglinks.${linkId}.${linkKindWord(type, permission)}.${rng.guid()}`,
          createTime: created.toISOString(),
          expireTime: type === 128 && rng.chance(0.6) ? new Date(created.getTime() + 30 * DAY).toISOString() : null,
          shareByIdx: rng.pick(users).idx,
          shareWith: type === 32 ? shareWithIdx.length : rng.int(0, 25),
          linkUrl: linkUrl(rng, site, obj),
        });
      }
    }
  }
  return links;
}

// Permission entries: who holds what on a site collection or an object.
function makePermissions(rng, sites, objects, users, groups, links) {
  const perms = [];
  const push = (site, objIdx, kind, ref, permission, unique) => perms.push({ siteIdx: site.idx, objIdx, kind, ref, permission, unique });
  const members = users.filter((u) => !u.isGuest);
  const bySite = groupBy(objects, (o) => o.siteIdx);
  for (const site of sites) {
    const root = bySite.get(site.idx)[0];
    if (site.module === 3) {
      push(site, root.idx, 'user', site.ownerIdx, 'Full Control', true);
    } else {
      site.spGroups.forEach((g, i) => push(site, root.idx, 'spgroup', i, g.permission, true));
      if (site.groupIdx >= 0) push(site, root.idx, 'group', site.groupIdx, 'Edit', true);
      for (const u of rng.sample(users, rng.int(0, 4))) push(site, root.idx, 'user', u.idx, rng.pick(PERMISSIONS), true);
      if (rng.chance(0.3)) push(site, root.idx, 'special', rng.int(0, 1), 'Read', true);
    }
    for (const obj of bySite.get(site.idx).slice(1)) {
      if (!obj.unique) continue;
      if (site.idx === 0 && rng.chance(0.3)) push(site, obj.idx, 'user', 0, rng.pick(PERMISSIONS), true);
      for (let n = rng.int(1, 3); n > 0; n--) {
        if (rng.chance(0.6)) push(site, obj.idx, 'user', rng.pick(rng.chance(0.2) ? users : members).idx, rng.pick(PERMISSIONS), true);
        else push(site, obj.idx, 'group', rng.pick(groups).idx, rng.pick(PERMISSIONS), true);
      }
    }
  }
  for (const link of links) perms.push({ siteIdx: link.siteIdx, objIdx: link.objIdx, kind: 'link', ref: link.idx, permission: link.permission === 'Edit' ? 'Contribute' : 'Read', unique: true });
  return perms;
}

// ---- Google Workspace -------------------------------------------------------

function makeGoogle(rng) {
  const taken = new Set();
  const users = Array.from({ length: SIZES.gUsers }, (_, idx) => {
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const email = `${uniqueName(taken, `${slug(first)}.${slug(last)}`)}@${GW_DOMAIN}`;
    return { idx, email, displayName: `${first} ${last}` };
  });
  const groups = Array.from({ length: SIZES.gGroups }, (_, idx) => {
    const name = uniqueName(taken, `${slug(rng.pick(DEPTS))}-${slug(rng.pick(TOPICS))}`);
    return { idx, email: `${name}@${GW_DOMAIN}`, name, memberIdx: rng.sample(users, rng.int(2, 12)).map((u) => u.idx) };
  });
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const drives = [
    ...Array.from({ length: SIZES.drives }, (_, idx) => ({ id: `0A${rng.chars(17, alphabet)}Uk9PVA`, name: `${rng.pick(DEPTS)} Shared Drive ${idx + 1}`, kind: 'Shared Drive' })),
    ...users.map((u) => ({ id: u.email, name: `${u.displayName} (My Drive)`, kind: 'User Drive', ownerIdx: u.idx })),
  ].map((d, idx) => ({ ...d, idx }));
  const files = Array.from({ length: SIZES.gFiles }, (_, idx) => {
    const drive = idx < 60 ? drives[0] : rng.pick(drives);
    const perms = [{ type: 'user', email: drive.kind === 'User Drive' ? drive.id : rng.pick(users).email, role: drive.kind === 'User Drive' ? 'owner' : 'organizer' }];
    for (let n = rng.int(0, 3); n > 0; n--) {
      perms.push(rng.weighted([
        [{ type: 'user', email: rng.pick(users).email, role: rng.pick(['writer', 'commenter', 'reader']) }, 50],
        [{ type: 'group', email: rng.pick(groups).email, role: rng.pick(['writer', 'reader']) }, 25],
        [{ type: 'user', email: `${slug(rng.pick(FIRST))}@${rng.pick(GUEST_DOMAINS)}`, role: 'reader' }, 15],
        [{ type: 'anyone', email: '', role: 'reader' }, 5],
        [{ type: 'domain', email: GW_DOMAIN, role: 'reader' }, 5],
      ]));
    }
    const created = rng.time(Date.UTC(2022, 0, 1), ANCHOR);
    return { idx, id: `1${rng.chars(32, alphabet)}`, name: makeFileName(rng, new Set()), driveIdx: drive.idx, perms, createdTime: isoSeconds(created) };
  });
  const links = Array.from({ length: SIZES.gLinks }, (_, idx) => {
    const file = rng.pick(files);
    return { idx, fileIdx: file.idx, type: rng.chance(0.5) ? 301 : 303, role: rng.pick(['reader', 'commenter', 'writer']), createTime: isoSeconds(rng.time(Date.UTC(2022, 0, 1), ANCHOR)) };
  });
  return { users, groups, drives, files, links };
}

// ---- indexes and derived views ------------------------------------------------

function groupBy(list, key) {
  const map = new Map();
  for (const item of list) {
    const k = key(item);
    if (!map.has(k)) map.set(k, []);
    map.get(k).push(item);
  }
  return map;
}

const urlKey = (u) => String(u).trim().toLowerCase().replace(/\/+$/, '');

// Login names the API documents' samples use for a fixed guest (the
// samples come from another tenant): a request copied from a sample finds
// that guest here.
const SAMPLE_LOGINS = {
  'insightstester001@jasoninsightstest.onmicrosoft.com': ['insightstester001_jasoninsightstest.onmicrosoft.com#ext#@m365x636363.onmicrosoft.com'],
};

function indexTenant(t) {
  const byKey = new Map();
  for (const u of t.users) {
    byKey.set(u.loginName, u);
    if (u.email) byKey.set(u.email.toLowerCase(), u);
    for (const alias of SAMPLE_LOGINS[(u.email || '').toLowerCase()] || []) byKey.set(alias, u);
  }
  t.userByKey = byKey;
  t.groupById = new Map(t.groups.map((g) => [g.id.toLowerCase(), g]));
  t.specialById = new Map();
  SPECIAL_GROUPS.forEach((g, i) => [g.id, ...g.aliases].forEach((id) => t.specialById.set(id.toLowerCase(), { ...g, idx: i })));
  t.siteByUrl = new Map(t.sites.map((s) => [urlKey(s.url), s]));
  t.siteById = new Map(t.sites.map((s) => [s.id.toLowerCase(), s]));
  t.objectByUrl = new Map(t.objects.map((o) => [urlKey(o.location), o]));
  t.objectsBySite = groupBy(t.objects, (o) => o.siteIdx);
  t.linksBySite = groupBy(t.links, (l) => l.siteIdx);
  t.permsBySite = groupBy(t.permissions, (p) => p.siteIdx);
  t.groupsOfUser = groupBy(t.groups.flatMap((g) => g.memberIdx.map((u) => [u, g])), (p) => p[0]);
  const g = t.google;
  g.userByEmail = new Map(g.users.map((u) => [u.email.toLowerCase(), u]));
  g.groupByEmail = new Map(g.groups.map((x) => [x.email.toLowerCase(), x]));
  g.driveById = new Map(g.drives.map((d) => [d.id.toLowerCase(), d]));
  g.fileById = new Map(g.files.map((f) => [f.id, f]));
}

// The users a permission entry reaches, with how it reaches them.
function principalsOf(t, p) {
  const site = t.sites[p.siteIdx];
  switch (p.kind) {
    case 'user': return [{ userIdx: p.ref, direct: true, via: '' }];
    case 'spgroup': {
      const g = site.spGroups[p.ref];
      return g.memberIdx.map((u) => ({ userIdx: u, direct: true, via: g.name }));
    }
    case 'group': {
      const g = t.groups[p.ref];
      return g.memberIdx.map((u) => ({ userIdx: u, direct: false, via: g.name }));
    }
    case 'link': {
      const l = t.links[p.ref];
      return l.shareWithIdx.map((u) => ({ userIdx: u, direct: false, via: l.logonName }));
    }
    default: return [];
  }
}

function computeUserStats(t) {
  const sites = new Map();
  for (const p of t.permissions) {
    for (const r of principalsOf(t, p)) {
      if (!r.direct) continue;
      if (!sites.has(r.userIdx)) sites.set(r.userIdx, new Set());
      sites.get(r.userIdx).add(p.siteIdx);
    }
  }
  for (const u of t.users) u.sitesWithDirectAccess = sites.has(u.idx) ? sites.get(u.idx).size : 0;
}

// ---- activity history (generated per request, deterministic in its inputs) ----

function activities(t, { subject, actor, start, finish, eventTypes, google, objectUrl, stable }) {
  const rng = makeRng(hashString(`${t.seed}|${subject}|${start}|${finish}|${google ? 'g' : 'm'}`));
  const pool = google ? GOOGLE_OPERATIONS : M365_OPERATIONS;
  const wanted = eventTypes && eventTypes.length ? new Set(eventTypes.map((e) => e.toLowerCase())) : null;
  const ops = wanted ? pool.filter((op) => wanted.has(op.toLowerCase())) : pool;
  if (!ops.length) return [];
  if (stable) return stableActivities(t, { subject, actor, start, finish, google, objectUrl, ops });
  const days = Math.max(1, Math.ceil((finish - start) / DAY));
  const count = Math.min(900, Math.max(5, days * 2));
  const rows = [];
  for (let i = 0; i < count; i++) {
    const obj = objectUrl ? null : google ? rng.pick(t.google.files) : rng.pick(t.objects);
    // A user's history has one actor; an object's has many.
    const who = actor || (google ? rng.pick(t.google.users).email : rng.pick(t.users).loginName);
    rows.push({
      time: rng.time(start, finish),
      user: who,
      operation: rng.pick(ops),
      objectName: obj ? obj.name : objectUrl.split('/').pop(),
      objectUrl: obj ? (google ? `https://drive.google.com/file/d/${obj.id}` : obj.location) : objectUrl,
      ip: `10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`,
      client: rng.pick(['Web', 'Desktop', 'Mobile', 'API']),
    });
  }
  return rows.sort((a, b) => a.time - b.time);
}

// A history that is the same whatever range asks for it (config
// activityHistory 'stable'): each day's events drawn from that day alone,
// whole seconds, three a day, those in [start, finish] given.
function stableActivities(t, { subject, actor, start, finish, google, objectUrl, ops }) {
  const rows = [];
  for (let day = Math.floor(start / DAY) * DAY; day <= finish; day += DAY) {
    const rng = makeRng(hashString(`${t.seed}|${subject}|${day}|${google ? 'g' : 'm'}|stable`));
    for (let i = 0; i < 3; i++) {
      const obj = objectUrl ? null : google ? rng.pick(t.google.files) : rng.pick(t.objects);
      const who = actor || (google ? rng.pick(t.google.users).email : rng.pick(t.users).loginName);
      const time = new Date(day + 1000 * Math.floor(rng.next() * 86400));
      const row = {
        time, user: who, operation: rng.pick(ops),
        objectName: obj ? obj.name : objectUrl.split('/').pop(),
        objectUrl: obj ? (google ? `https://drive.google.com/file/d/${obj.id}` : obj.location) : objectUrl,
        ip: `10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`,
        client: rng.pick(['Web', 'Desktop', 'Mobile', 'API']),
      };
      if (time.getTime() >= start && time.getTime() <= finish) rows.push(row);
    }
  }
  return rows.sort((a, b) => a.time - b.time || (a.objectUrl < b.objectUrl ? -1 : 1));
}

// hostile: group names and object titles start with formula-like texts
// (HOSTILE); markup: they end with HTML (MARKUP); everything else, the
// objects' URLs included, is as without.
function createTenant(seed = 42, { hostile: formulas = false, markup: tags = false } = {}) {
  const rng = makeRng(seed);
  const users = makeUsers(rng);
  const groups = makeGroups(rng, users);
  const sites = makeSites(rng, users, groups);
  addSpGroups(rng, sites, users);
  const objects = [];
  for (const site of sites) makeSiteObjects(rng, site, users, objects);
  if (formulas) {
    groups.forEach((g, i) => { g.name = hostile(i, g.name); });
    objects.forEach((o, i) => { o.name = hostile(i, o.name); });
  }
  if (tags) {
    groups.forEach((g, i) => { g.name = markup(i, g.name); });
    objects.forEach((o, i) => { o.name = markup(i, o.name); });
  }
  const links = makeLinks(rng, sites, objects, users);
  const permissions = makePermissions(rng, sites, objects, users, groups, links);
  const t = { seed, users, groups, sites, objects, links, permissions, google: makeGoogle(rng), specialGroups: SPECIAL_GROUPS };
  indexTenant(t);
  computeUserStats(t);
  t.principalsOf = (p) => principalsOf(t, p);
  t.activities = (opts) => activities(t, opts);
  t.urlKey = urlKey;
  return t;
}

module.exports = {
  createTenant, urlKey, makeRng, mulberry32, hashString, HOSTILE, hostile, MARKUP,
  MODULES, OBJECT_TYPES, SENSITIVITY, EXPOSURE, RISK, LINK_TYPES, GOOGLE_LINK_TYPES, TAGS, ANCHOR, DAY,
};

'use strict';
// A minimal ZIP writer (PKWARE APPNOTE 6.3): local headers, data, central
// directory, end record. Node 20 has no zlib.crc32, so CRC-32 uses a table.
const zlib = require('zlib');

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// MS-DOS date/time fields; the format cannot express years before 1980.
function dosDateTime(date) {
  const d = date || new Date(Date.UTC(2024, 0, 1));
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

// Deflate when it pays off, store otherwise (already-compressed data such as
// an .xlsx inside the .zip gains nothing).
function encodeEntry(data, compress) {
  if (compress !== false && data.length > 64) {
    const deflated = zlib.deflateRawSync(data, { level: 6 });
    if (deflated.length < data.length) return { method: 8, payload: deflated };
  }
  return { method: 0, payload: data };
}

// The fields the local and the central header share, from "version
// needed" to the name's length, written into h from offset at.
function entryFields(h, e, at) {
  h.writeUInt16LE(20, at);           // version needed: 2.0 (deflate)
  h.writeUInt16LE(e.flags, at + 2);
  h.writeUInt16LE(e.method, at + 4);
  h.writeUInt16LE(e.dos.time, at + 6);
  h.writeUInt16LE(e.dos.date, at + 8);
  h.writeUInt32LE(e.crc, at + 10);
  h.writeUInt32LE(e.payload.length, at + 14);
  h.writeUInt32LE(e.size, at + 18);
  h.writeUInt16LE(e.name.length, at + 22);
}

function localHeader(e) {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  entryFields(h, e, 4);
  h.writeUInt16LE(0, 28);            // no extra field
  return Buffer.concat([h, e.name]);
}

function centralHeader(e) {
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(20, 4);            // made by: MS-DOS, 2.0
  entryFields(h, e, 6);
  // extra length, comment length, disk number, internal attributes: all 0
  h.writeUInt32LE(0, 38);            // external attributes
  h.writeUInt32LE(e.offset, 42);
  return Buffer.concat([h, e.name]);
}

function endRecord(count, cdSize, cdOffset) {
  const h = Buffer.alloc(22);
  h.writeUInt32LE(0x06054b50, 0);
  h.writeUInt16LE(count, 8);
  h.writeUInt16LE(count, 10);
  h.writeUInt32LE(cdSize, 12);
  h.writeUInt32LE(cdOffset, 16);
  return h;
}

// entries: [{ name, data: Buffer|string, date?: Date, compress?: boolean }]
function createZip(entries) {
  const parts = [];
  const written = [];
  let offset = 0;
  for (const entry of entries) {
    const data = Buffer.isBuffer(entry.data) ? entry.data : Buffer.from(String(entry.data), 'utf8');
    const name = Buffer.from(entry.name, 'utf8');
    const { method, payload } = encodeEntry(data, entry.compress);
    const e = {
      name, method, payload, offset,
      crc: crc32(data),
      size: data.length,
      dos: dosDateTime(entry.date),
      flags: /[^\x20-\x7e]/.test(entry.name) ? 0x0800 : 0,   // bit 11: UTF-8 name
    };
    const header = localHeader(e);
    parts.push(header, payload);
    offset += header.length + payload.length;
    written.push(e);
  }
  const central = written.map(centralHeader);
  const cdSize = central.reduce((n, b) => n + b.length, 0);
  return Buffer.concat([...parts, ...central, endRecord(written.length, cdSize, offset)]);
}

module.exports = { createZip, crc32 };

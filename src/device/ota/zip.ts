/**
 * A small, strict ZIP reader and writer for firmware bundles (spec §7): stored and deflated entries, with
 * the per-entry extra fields that carry bundle signatures (header id 0x293a). No ZIP64, no encryption, no
 * multi-disk archives: bundles never need them, and anything unexpected is refused, never guessed.
 *
 * The reader checks every offset against the buffer, the local header against the central directory,
 * the CRC-32 and the uncompressed size of every entry it extracts, and refuses unsafe entry names
 * (absolute, `..`, backslashes, NUL, drive letters). Inflation is capped at the declared size.
 */
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";

export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ZipError";
  }
}

export interface ZipEntryInput {
  name: string;
  data: Uint8Array;
  /** Extra field bytes (already framed as id/len/data records) for both the local and central header. */
  extra?: Uint8Array;
  /** 0 = stored, 8 = deflated (default). */
  method?: 0 | 8;
  mtime?: Date;
}

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** Extra field of the central directory record. */
  extra: Uint8Array;
  /** Extra field of the local header. */
  localExtra: Uint8Array;
  dataOffset: number;
  isDirectory: boolean;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;

function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

/** Frame one extra-field record: LE u16 id, LE u16 length, data. */
export function extraRecord(id: number, data: Uint8Array): Uint8Array {
  if (data.length > 0xffff) throw new ZipError("extra field too long");
  const out = new Uint8Array(4 + data.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, id, true);
  v.setUint16(2, data.length, true);
  out.set(data, 4);
  return out;
}

/** The records of an extra field by header id (the first record of each id wins). */
export function parseExtra(extra: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = v.getUint16(p, true);
    const len = v.getUint16(p + 2, true);
    if (p + 4 + len > extra.length) break;
    if (!out.has(id)) out.set(id, extra.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return out;
}

/** True for a relative entry name with no `..`, no absolute path, no backslash, NUL or drive letter. */
export function isSafeEntryName(name: string): boolean {
  if (name === "" || name.length > 1024) return false;
  if (name.startsWith("/") || name.includes("\\") || name.includes("\0") || /^[A-Za-z]:/.test(name)) return false;
  const segs = name.replace(/\/$/, "").split("/");
  return segs.every((s) => s !== "" && s !== "." && s !== "..");
}

/** Build a ZIP archive. */
export function buildZip(entries: ZipEntryInput[]): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    if (!isSafeEntryName(e.name)) throw new ZipError(`unsafe entry name: ${JSON.stringify(e.name)}`);
    const name = Buffer.from(e.name, "utf8");
    const extra = e.extra ?? new Uint8Array(0);
    const method = e.method ?? 8;
    const body = method === 8 ? deflateRawSync(e.data) : e.data;
    const crc = crc32(e.data) >>> 0;
    const { time, date } = dosDateTime(e.mtime ?? new Date(0));
    const flags = 0x0800; // UTF-8 names

    const lh = new Uint8Array(30 + name.length + extra.length);
    const lv = new DataView(lh.buffer);
    lv.setUint32(0, SIG_LOCAL, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, flags, true);
    lv.setUint16(8, method, true);
    lv.setUint16(10, time, true);
    lv.setUint16(12, date, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, extra.length, true);
    lh.set(name, 30);
    lh.set(extra, 30 + name.length);

    const ch = new Uint8Array(46 + name.length + extra.length);
    const cv = new DataView(ch.buffer);
    cv.setUint32(0, SIG_CENTRAL, true);
    cv.setUint16(4, 0x0314, true); // made by: Unix, 2.0
    cv.setUint16(6, 20, true);
    cv.setUint16(8, flags, true);
    cv.setUint16(10, method, true);
    cv.setUint16(12, time, true);
    cv.setUint16(14, date, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extra.length, true);
    cv.setUint32(38, (0o100644 << 16) >>> 0, true);
    cv.setUint32(42, offset, true);
    ch.set(name, 46);
    ch.set(extra, 46 + name.length);

    locals.push(lh, body);
    centrals.push(ch);
    offset += lh.length + body.length;
  }
  const cdSize = centrals.reduce((n, c) => n + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, SIG_EOCD, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return Buffer.concat([...locals, ...centrals, eocd]);
}

/** Parse the central directory of a ZIP archive (entries are not extracted yet). */
export function readZip(buf: Uint8Array): ZipEntry[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 22) throw new ZipError("not a zip archive (too short)");
  let eocd = -1;
  for (let p = buf.length - 22; p >= Math.max(0, buf.length - 22 - 0xffff); p--) {
    if (v.getUint32(p, true) === SIG_EOCD && p + 22 + v.getUint16(p + 20, true) === buf.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new ZipError("not a zip archive (no end of central directory; truncated?)");
  const disk = v.getUint16(eocd + 4, true);
  const cdDisk = v.getUint16(eocd + 6, true);
  const count = v.getUint16(eocd + 10, true);
  const cdSize = v.getUint32(eocd + 12, true);
  const cdOffset = v.getUint32(eocd + 16, true);
  if (disk !== 0 || cdDisk !== 0 || v.getUint16(eocd + 8, true) !== count) throw new ZipError("multi-disk zip archives are not supported");
  if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff) throw new ZipError("ZIP64 archives are not supported");
  if (cdOffset + cdSize > eocd) throw new ZipError("central directory out of bounds");

  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdOffset + cdSize || v.getUint32(p, true) !== SIG_CENTRAL) throw new ZipError(`bad central directory record ${i}`);
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    const csize = v.getUint32(p + 20, true);
    const size = v.getUint32(p + 24, true);
    const nlen = v.getUint16(p + 28, true);
    const xlen = v.getUint16(p + 30, true);
    const clen = v.getUint16(p + 32, true);
    const lho = v.getUint32(p + 42, true);
    const end = p + 46 + nlen + xlen + clen;
    if (end > cdOffset + cdSize) throw new ZipError(`central directory record ${i} out of bounds`);
    const name = Buffer.from(buf.subarray(p + 46, p + 46 + nlen)).toString("utf8");
    const extra = buf.subarray(p + 46 + nlen, p + 46 + nlen + xlen);
    p = end;
    if (flags & 0x0001) throw new ZipError(`encrypted entry ${JSON.stringify(name)} is not supported`);
    if (method !== 0 && method !== 8) throw new ZipError(`entry ${JSON.stringify(name)}: compression method ${method} is not supported`);
    if (!isSafeEntryName(name)) throw new ZipError(`unsafe entry name ${JSON.stringify(name)}`);
    if (names.has(name)) throw new ZipError(`duplicate entry ${JSON.stringify(name)}`);
    names.add(name);
    if (lho + 30 > cdOffset || v.getUint32(lho, true) !== SIG_LOCAL) throw new ZipError(`entry ${JSON.stringify(name)}: bad local header`);
    const lnlen = v.getUint16(lho + 26, true);
    const lxlen = v.getUint16(lho + 28, true);
    const lname = Buffer.from(buf.subarray(lho + 30, lho + 30 + lnlen)).toString("utf8");
    if (lname !== name) throw new ZipError(`entry ${JSON.stringify(name)}: local header names ${JSON.stringify(lname)}`);
    const dataOffset = lho + 30 + lnlen + lxlen;
    if (dataOffset + csize > cdOffset) throw new ZipError(`entry ${JSON.stringify(name)}: data out of bounds`);
    if (method === 0 && csize !== size) throw new ZipError(`entry ${JSON.stringify(name)}: stored sizes differ`);
    entries.push({
      name,
      method,
      crc32: crc,
      compressedSize: csize,
      size,
      extra,
      localExtra: buf.subarray(lho + 30 + lnlen, dataOffset),
      dataOffset,
      isDirectory: name.endsWith("/"),
    });
  }
  return entries;
}

/** Extract one entry, checking its size and CRC-32. */
export function extractEntry(buf: Uint8Array, e: ZipEntry): Uint8Array {
  const raw = buf.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
  let data: Uint8Array;
  if (e.method === 0) data = raw;
  else {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      throw new ZipError(`entry ${JSON.stringify(e.name)}: corrupt deflate data (${(err as Error).message})`);
    }
  }
  if (data.length !== e.size) throw new ZipError(`entry ${JSON.stringify(e.name)}: size ${data.length} differs from the declared ${e.size}`);
  if ((crc32(data) >>> 0) !== e.crc32) throw new ZipError(`entry ${JSON.stringify(e.name)}: CRC-32 mismatch`);
  return data;
}

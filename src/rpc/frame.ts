/**
 * The RPC frame of spec §1 ("mg_rpc"/"clubby" v2) and its codec. Pure: no I/O.
 *
 * One frame is one JSON object; channels only differ in how they carry it. A frame with `method` is a
 * request (a notification when it has no `id`); without `method` it is a response.
 */
import { isAscii } from "node:buffer";
import { BadFrameError } from "../errors.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The in-frame digest credentials of spec §4.3. mos sends nonce and cnonce as JSON numbers. */
export interface FrameAuth {
  realm: string;
  username: string;
  nonce: number | string;
  cnonce: number | string;
  response: string;
  algorithm?: string;
  opaque?: string;
}

export interface FrameError {
  code: number;
  message?: string;
}

export type FrameId = number | string;

export interface Frame {
  v?: number;
  src?: string;
  dst?: string;
  key?: string;
  tag?: string;
  id?: FrameId;
  method?: string;
  /** Arguments. On decode, the deprecated `args` is folded in here when `params` is absent. */
  params?: unknown;
  /** The deprecated synonym of params; set only when sending in `--mgrpc-compat-args` mode. */
  args?: unknown;
  result?: unknown;
  error?: FrameError;
  auth?: FrameAuth;
  nr?: boolean;
}

/** The lowest and highest+1 ids mos generates: integers in [2^40, 2^41), safe as JS numbers. */
export const ID_MIN = 2 ** 40;
export const ID_LIMIT = 2 ** 41;

/** A request id as mos makes them: a random integer in [2^40, 2^41). */
export function newRequestId(): number {
  return ID_MIN + Math.floor(Math.random() * ID_MIN);
}

/** Ids are matched after normalising to a string: the device echoes `"123"` as `123`. */
export function normaliseId(id: FrameId): string {
  return typeof id === "number" ? String(id) : id;
}

/**
 * The id as a device echoes it (spec §1.3): a token of digits only goes back as a bare number, anything
 * else as a string. `rawToken` is the id's text in the request when it was a number (precision-safe).
 */
export function echoId(id: FrameId, rawToken?: string): FrameId {
  // the common case (mos ids are integers in [2^40, 2^41)): already the number it echoes as
  if (typeof id === "number" && rawToken === undefined && Number.isSafeInteger(id) && id >= 0) return id;
  const text = typeof id === "string" ? id : (rawToken ?? String(id));
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  return text;
}

export function isRequest(f: Frame): boolean {
  return typeof f.method === "string";
}

export function isNotification(f: Frame): boolean {
  return typeof f.method === "string" && f.id === undefined;
}

const STRING_FIELDS = ["src", "dst", "key", "tag", "method"] as const;

export interface DecodedFrame {
  frame: Frame;
  /** Text of a numeric id in the source, for echoing ids beyond 2^53 or written as 1.0 exactly. */
  rawId?: string;
}

/**
 * Parse one frame from text. Throws BadFrameError for anything that is not a frame: not JSON, JSON that
 * is not an object, an id that is neither number nor string, a non-string method/src/dst/tag, a
 * non-numeric error.code. Unknown keys are ignored, as the firmware does.
 */
export function decodeFrame(text: string): DecodedFrame {
  return decodeFrameText(text, false);
}

/**
 * decodeFrame for a transport: `asciiBytes` says the text was read from bytes found to be all ASCII
 * (isBigAsciiFrame), so a big `data` string cut out of it is marked for knownAscii(). Not in the public API:
 * a wrong `true` would let a base64 decoder skip its character check.
 */
export function decodeFrameText(text: string, asciiBytes: boolean): DecodedFrame {
  if (text.length >= 2 * BIG_DATA_CHARS) {
    const fast = decodeWithBigData(text, asciiBytes);
    if (fast !== undefined) return fast;
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    // Firmware's GPIO.Int notification is one closing brace short (spec §1.2): accept that one repair.
    try {
      obj = JSON.parse(text + "}");
    } catch {
      throw new BadFrameError(`not JSON: ${(e as Error).message}`);
    }
  }
  return fromObject(obj, text);
}

/** A `data` string at least this long is cut out of the text instead of being parsed (see decodeWithBigData). */
const BIG_DATA_CHARS = 16 * 1024;
/** Stands in for a cut-out string while the rest of the frame is parsed; random so no peer can forge it. */
const DATA_PLACEHOLDER = `remos-data-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

/**
 * The fast path for frames that carry file bytes (`params.data` of FS.Put, `result.data` of FS.Get, OTA
 * chunks: hundreds of KB of base64): JSON.parse would scan the string and copy it into a new string; here
 * it is cut out of the text (a slice shares the text's characters), the small rest is parsed with a
 * placeholder in its place, and the slice is put back. Used only when that is provably the same value:
 * the string has no backslash (no escapes to undo) and the placeholder came back as `params.data` or
 * `result.data`. Else undefined (the caller parses the whole text). One leniency against JSON.parse: a raw
 * control character inside such a string is not refused here (base64 checks refuse it later).
 */
function decodeWithBigData(text: string, asciiBytes: boolean): DecodedFrame | undefined {
  const key = text.indexOf('"data":');
  if (key < 0) return undefined;
  let open = key + 7;
  while (text.charCodeAt(open) === 0x20) open++;
  if (text.charCodeAt(open) !== 0x22 /* " */) return undefined;
  const start = open + 1;
  const end = text.indexOf('"', start);
  if (end - start < BIG_DATA_CHARS) return undefined; // also: no closing quote (end = -1)
  const backslash = text.indexOf("\\", start);
  if (backslash >= 0 && backslash < end) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(text.slice(0, start) + DATA_PLACEHOLDER + text.slice(end));
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return undefined;
  const o = obj as Record<string, unknown>;
  for (const k of ["params", "args", "result"]) {
    const holder = o[k];
    if (holder !== null && typeof holder === "object" && !Array.isArray(holder) && (holder as Record<string, unknown>).data === DATA_PLACEHOLDER) {
      const data = text.slice(start, end);
      (holder as Record<string, unknown>).data = data;
      if (asciiBytes) Object.defineProperty(holder, ASCII_DATA, { value: data });
      return fromObject(o, text);
    }
  }
  return undefined;
}

/**
 * True when `bytes` are a frame big enough to carry file data and all ASCII (one SIMD scan). Such bytes
 * read the same as latin1, which copies them without V8's UTF-8 pass, and decodeFrameText(text, true) lets
 * the consumer of a big `data` string cut out of them skip its own character check (knownAscii).
 */
export function isBigAsciiFrame(bytes: Buffer): boolean {
  return bytes.length >= 2 * BIG_DATA_CHARS && isAscii(bytes);
}

/** The text of a frame's bytes (UTF-8), read as latin1 when isBigAsciiFrame says that is the same text. */
export function frameText(bytes: Buffer, asciiBytes: boolean): string {
  return bytes.toString(asciiBytes ? "latin1" : "utf8");
}

/**
 * Parse one frame from its bytes (UTF-8): decodeFrame(bytes.toString("utf8")), and when a big `data` string
 * was cut out (decodeWithBigData) of bytes that are all ASCII, knownAscii() tells its consumer so (a base64
 * decoder then needs no character check of its own).
 */
export function decodeFrameBytes(bytes: Buffer): DecodedFrame {
  const ascii = isBigAsciiFrame(bytes);
  return decodeFrameText(frameText(bytes, ascii), ascii);
}

/**
 * True when `bytes`, read as UTF-8, are empty once trimmed (String.prototype.trim: an empty HTTP body or
 * answer). Scans the bytes; only a body that starts with a non-ASCII byte or \v / \f is decoded to check.
 */
export function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
    return b < 0x80 && b !== 0x0b && b !== 0x0c ? false : bytes.toString("utf8").trim() === "";
  }
  return true;
}

/**
 * On a `params` / `result` object whose big `data` string decodeFrameBytes cut out of a frame whose bytes
 * are all ASCII: that string (a non-enumerable symbol property: JSON.stringify and for-in do not see it,
 * and it lives as long as the object does, where a WeakMap entry would keep it until a full GC).
 */
const ASCII_DATA = Symbol("remos.asciiData");

/**
 * True when `text` is the `data` string of `holder` (a decoded frame's params or result) that
 * decodeFrameBytes cut out of a frame whose bytes are all ASCII: a base64 decoder may skip its own check.
 */
export function knownAscii(holder: unknown, text: string): boolean {
  return typeof holder === "object" && holder !== null && (holder as { [ASCII_DATA]?: string })[ASCII_DATA] === text;
}

/** Validate an already-parsed value as a frame (see decodeFrame). */
export function fromObject(obj: unknown, sourceText?: string): DecodedFrame {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new BadFrameError("frame is not a JSON object");
  }
  const o = obj as Record<string, unknown>;
  const f: Frame = {};
  let rawId: string | undefined;
  if (o.id === null) throw new BadFrameError("id must be a number or a string, got null");
  if (o.id !== undefined) {
    if (typeof o.id === "number") {
      if (!Number.isFinite(o.id)) throw new BadFrameError("id is not a finite number");
      f.id = o.id;
      if (sourceText && !Number.isSafeInteger(o.id)) rawId = rawNumericId(sourceText);
    } else if (typeof o.id === "string") {
      f.id = o.id;
    } else {
      throw new BadFrameError(`id must be a number or a string, got ${typeName(o.id)}`);
    }
  }
  for (const k of STRING_FIELDS) {
    const v = o[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") throw new BadFrameError(`${k} must be a string, got ${typeName(v)}`);
    f[k] = v;
  }
  if (typeof o.v === "number") f.v = o.v;
  // `args` is the deprecated synonym; when both are present `params` wins (the firmware scans it last).
  if (o.params !== undefined) f.params = o.params;
  else if (o.args !== undefined) f.params = o.args;
  if ("result" in o) f.result = o.result;
  if (o.error !== undefined && o.error !== null) {
    if (typeof o.error !== "object" || Array.isArray(o.error)) throw new BadFrameError("error must be an object");
    const e = o.error as Record<string, unknown>;
    const code = e.code === undefined ? 0 : e.code;
    if (typeof code !== "number" || !Number.isFinite(code)) throw new BadFrameError("error.code must be a number");
    f.error = { code: Math.trunc(code) };
    if (e.message !== undefined && e.message !== null) f.error.message = String(e.message);
  }
  if (o.auth !== undefined && o.auth !== null) {
    if (typeof o.auth !== "object" || Array.isArray(o.auth)) throw new BadFrameError("auth must be an object");
    f.auth = o.auth as FrameAuth;
  }
  if (typeof o.nr === "boolean") f.nr = o.nr;
  return rawId === undefined ? { frame: f } : { frame: f, rawId };
}

/**
 * The text of the top-level `id` number in a frame's JSON (a nested `"id"`, e.g. in params, is skipped):
 * a scan that tracks strings and nesting depth. Only called for ids that are not safe integers.
 */
function rawNumericId(text: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      if (depth === 1 && text.slice(start, i + 1) === '"id"') {
        const m = /^\s*:\s*(-?[0-9][0-9.eE+-]*)/.exec(text.slice(i + 1, i + 1 + 400));
        if (m) return m[1];
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return undefined;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/**
 * The frame as the ordered object mos puts on the wire: `v, src, dst, key, tag, id, method, params,
 * result, error, auth, nr, args`, each only when set. Responses built by RpcServer use the device order
 * (`id, src, dst, tag, result|error`) by constructing the frame in that order; this keeps field order.
 */
function ordered(f: Frame): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (f.v !== undefined) o.v = f.v;
  if (f.id !== undefined && f.method === undefined) {
    // response: device order
    o.id = f.id;
    if (f.src !== undefined) o.src = f.src;
    if (f.dst !== undefined) o.dst = f.dst;
    if (f.tag !== undefined) o.tag = f.tag;
    if (f.key !== undefined) o.key = f.key;
  } else {
    if (f.src !== undefined) o.src = f.src;
    if (f.dst !== undefined) o.dst = f.dst;
    if (f.key !== undefined) o.key = f.key;
    if (f.tag !== undefined) o.tag = f.tag;
    if (f.id !== undefined) o.id = f.id;
    if (f.method !== undefined) o.method = f.method;
  }
  if (f.params !== undefined) o.params = f.params;
  if (f.error !== undefined) o.error = f.error;
  else if ("result" in f) o.result = f.result === undefined ? null : f.result;
  if (f.auth !== undefined) o.auth = f.auth;
  if (f.nr !== undefined) o.nr = f.nr;
  if (f.args !== undefined) o.args = f.args;
  return o;
}

/**
 * Bytes as base64 text for a frame field (FS.Put `data`, FS.Get `data`): encodeFrame splices the text into
 * the frame as it is, where JSON.stringify would scan it for characters to escape and copy it (base64 has
 * none). Anything else that serialises it (JSON.stringify, logs) sees the plain string through toJSON.
 * Only made from bytes, so its text is always base64 (standard alphabet, `=` padding).
 */
export class Base64Text {
  readonly text: string;
  private constructor(text: string) {
    this.text = text;
  }
  static of(bytes: Uint8Array): Base64Text {
    return new Base64Text(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"));
  }
  toJSON(): string {
    return this.text;
  }
}

/** Stands in for a Base64Text while the rest of the frame is stringified; random, and checked to be unique. */
const SPLICE_MARK = `remos-b64-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
/** The mark as it appears in JSON text (quoted). */
const SPLICE_PLACEHOLDER = JSON.stringify(SPLICE_MARK);

/**
 * The frame's text around its one Base64Text value (a direct field of `params`, `result` or `args`):
 * `[head, base64, tail]`, the rest stringified with a placeholder cut out; undefined when the frame has
 * none, more than one, or the placeholder is not unique in the text (then JSON.stringify serialises it
 * through toJSON).
 */
function splicedParts(f: Frame): [string, string, string] | undefined {
  let found: { field: "params" | "result" | "args"; key: string; value: Base64Text } | undefined;
  for (const field of ["params", "result", "args"] as const) {
    const holder = f[field];
    if (holder === null || typeof holder !== "object" || Array.isArray(holder) || holder instanceof Base64Text) continue;
    // for-in, not Object.entries: no arrays made for the common frame that has no Base64Text
    for (const key in holder) {
      const value = (holder as Record<string, unknown>)[key];
      if (!(value instanceof Base64Text) || !Object.hasOwn(holder, key)) continue;
      if (found !== undefined) return undefined;
      found = { field, key, value };
    }
  }
  if (found === undefined) return undefined;
  const holder = { ...(f[found.field] as Record<string, unknown>), [found.key]: SPLICE_MARK };
  const text = bareBigId(f, JSON.stringify(ordered({ ...f, [found.field]: holder })));
  const at = text.indexOf(SPLICE_PLACEHOLDER);
  if (at < 0 || text.indexOf(SPLICE_PLACEHOLDER, at + 1) >= 0) return undefined;
  return [text.slice(0, at), found.value.text, text.slice(at + SPLICE_PLACEHOLDER.length)];
}

/** A digits-only id beyond 2^53 goes back as the bare number it came as (spec §1.3), not as a string. */
function bareBigId(f: Frame, text: string): string {
  if (typeof f.id === "string" && f.method === undefined && f.id.length > 15 && /^[0-9]+$/.test(f.id)) {
    return text.replace(/^(\{(?:"v":[^,]*,)?"id":)"([0-9]+)"/, "$1$2");
  }
  return text;
}

/** Encode a frame as compact JSON text (UTF-8 characters unescaped; see `toAscii` for UART). */
export function encodeFrame(f: Frame): string {
  const parts = splicedParts(f);
  if (parts) return parts[0] + '"' + parts[1] + '"' + parts[2];
  return bareBigId(f, JSON.stringify(ordered(f)));
}

/**
 * The UTF-8 bytes of a frame that carries a Base64Text (FS.Put requests, FS.Get answers), built straight
 * into one Buffer: the big base64 string is copied once, never concatenated, flattened and re-encoded.
 * Undefined for any other frame (use encodeFrame). Same bytes as `Buffer.from(encodeFrame(f))`.
 */
export function encodeFrameBytes(f: Frame): Buffer | undefined {
  const parts = splicedParts(f);
  if (!parts) return undefined;
  const [head, b64, tail] = parts;
  const headLength = Buffer.byteLength(head, "utf8");
  const out = Buffer.allocUnsafe(headLength + b64.length + 2 + Buffer.byteLength(tail, "utf8"));
  let o = out.write(head, 0, "utf8");
  out[o++] = 0x22; // "
  o += out.write(b64, o, "latin1");
  out[o++] = 0x22;
  out.write(tail, o, "utf8");
  return out;
}

/** Escape every character >= 0x7f as \uXXXX: the UART firmware drops its buffer on any byte >= 0x80. */
export function toAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** Byte length of a frame's text as UTF-8. */
export function frameByteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

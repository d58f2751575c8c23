/**
 * MQTT 3.1.1 on the wire, pure (no I/O): the packet types remos uses (CONNECT, CONNACK, PUBLISH with
 * QoS 0/1/2, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ,
 * PINGRESP, DISCONNECT), `encodePacket` to bytes and `MqttParser`, an incremental decoder fed arbitrary
 * byte chunks (a packet split anywhere, many packets per chunk) with a bound on the packet size.
 *
 * Garbage never makes the parser throw anything but `MqttProtocolError` (a TransportError): the
 * connection that carried it is then unusable and is closed by its owner. Mongoose OS firmware, aedes and
 * the brokers remos meets all speak 3.1.1, so MQTT 5 is not implemented.
 */
import { TransportError } from "../errors.js";

/** The bytes of a connection broke the MQTT 3.1.1 rules: the connection must be closed. */
export class MqttProtocolError extends TransportError {
  constructor(message: string) {
    super(`MQTT protocol error: ${message}`);
    this.name = "MqttProtocolError";
  }
}

export type QoS = 0 | 1 | 2;

export interface ConnectPacket {
  type: "connect";
  clientId: string;
  clean: boolean;
  /** Seconds; 0 turns keepalive off. */
  keepalive: number;
  username?: string;
  password?: Buffer;
  will?: { topic: string; payload: Buffer; qos: QoS; retain: boolean };
}
export interface ConnackPacket {
  type: "connack";
  sessionPresent: boolean;
  /** 0 accepted; 1..5 refusals (see `connackMessage`). */
  returnCode: number;
}
export interface PublishPacket {
  type: "publish";
  topic: string;
  payload: Buffer;
  qos: QoS;
  dup: boolean;
  retain: boolean;
  /** Present when qos > 0. */
  messageId?: number;
}
export interface AckPacket {
  type: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback";
  messageId: number;
}
export interface SubscribePacket {
  type: "subscribe";
  messageId: number;
  subscriptions: Array<{ topic: string; qos: QoS }>;
}
export interface SubackPacket {
  type: "suback";
  messageId: number;
  /** Granted QoS per topic, in order; 0x80 = refused. */
  granted: number[];
}
export interface UnsubscribePacket {
  type: "unsubscribe";
  messageId: number;
  topics: string[];
}
export interface EmptyPacket {
  type: "pingreq" | "pingresp" | "disconnect";
}
export type Packet = ConnectPacket | ConnackPacket | PublishPacket | AckPacket | SubscribePacket | SubackPacket | UnsubscribePacket | EmptyPacket;

/**
 * What the parser reports instead of a PUBLISH bigger than its limit: the message's routing, so that it
 * can be acknowledged and logged, while its payload is skipped without being buffered.
 */
export interface OversizedPublish {
  type: "publish-oversized";
  topic: string;
  qos: QoS;
  messageId?: number;
  /** The packet's remaining length. */
  size: number;
}

/** Largest remaining length a 4-byte varint can carry. */
export const MAX_REMAINING_LENGTH = 268_435_455;
/** Refused QoS in a SUBACK. */
export const SUBACK_FAILURE = 0x80;

const CONNACK_MESSAGES: Record<number, string> = {
  0: "connection accepted",
  1: "unacceptable protocol version",
  2: "identifier rejected",
  3: "server unavailable",
  4: "bad user name or password",
  5: "not authorized",
};

/** The words for a CONNACK return code (MQTT 3.1.1 §3.2.2.3). */
export function connackMessage(code: number): string {
  return CONNACK_MESSAGES[code] ?? `unknown return code ${code}`;
}

const TYPE_CODES = {
  connect: 1, connack: 2, publish: 3, puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7,
  subscribe: 8, suback: 9, unsubscribe: 10, unsuback: 11, pingreq: 12, pingresp: 13, disconnect: 14,
} as const;

// ---------------------------------------------------------------- encoding

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Allocate a packet of `body` bytes after the fixed header, write the header, return [buffer, offset]. */
function start(first: number, body: number): [Buffer, number] {
  if (body > MAX_REMAINING_LENGTH) throw new MqttProtocolError(`packet of ${body} bytes is too big for MQTT`);
  const buf = Buffer.allocUnsafe(1 + varintSize(body) + body);
  buf[0] = first;
  let off = 1;
  let n = body;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[off++] = b;
  } while (n > 0);
  return [buf, off];
}

function strBytes(s: string): number {
  const n = Buffer.byteLength(s, "utf8");
  if (n > 0xffff) throw new MqttProtocolError(`string of ${n} bytes is too long for MQTT`);
  return n;
}

function writeStr(buf: Buffer, off: number, s: string, len: number): number {
  buf.writeUInt16BE(len, off);
  buf.write(s, off + 2, len, "utf8");
  return off + 2 + len;
}

function writeBin(buf: Buffer, off: number, b: Buffer): number {
  if (b.length > 0xffff) throw new MqttProtocolError(`field of ${b.length} bytes is too long for MQTT`);
  buf.writeUInt16BE(b.length, off);
  b.copy(buf, off + 2);
  return off + 2 + b.length;
}

function checkId(id: number): number {
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw new MqttProtocolError(`bad packet id ${id}`);
  return id;
}

/**
 * One PUBLISH, the hot path: the payload goes straight into the packet buffer (a string is written as
 * UTF-8 without an intermediate Buffer).
 */
export function encodePublish(topic: string, payload: string | Buffer, qos: QoS, messageId: number | undefined, retain = false, dup = false): Buffer {
  const tlen = strBytes(topic);
  const plen = typeof payload === "string" ? Buffer.byteLength(payload, "utf8") : payload.length;
  const body = 2 + tlen + (qos > 0 ? 2 : 0) + plen;
  const [buf, o] = start(0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0), body);
  let off = writeStr(buf, o, topic, tlen);
  if (qos > 0) {
    buf.writeUInt16BE(checkId(messageId ?? 0), off);
    off += 2;
  }
  if (typeof payload === "string") buf.write(payload, off, plen, "utf8");
  else payload.copy(buf, off);
  return buf;
}

/** Encode any packet (throws MqttProtocolError for values MQTT cannot carry). */
export function encodePacket(p: Packet): Buffer {
  switch (p.type) {
    case "connect": {
      const cid = strBytes(p.clientId);
      const user = p.username !== undefined ? strBytes(p.username) : -1;
      const wt = p.will ? strBytes(p.will.topic) : -1;
      let body = 10 + 2 + cid;
      if (p.will) body += 2 + wt + 2 + p.will.payload.length;
      if (user >= 0) body += 2 + user;
      if (p.password !== undefined) body += 2 + p.password.length;
      const [buf, o] = start(0x10, body);
      let off = writeStr(buf, o, "MQTT", 4);
      buf[off++] = 4;
      let flags = p.clean ? 0x02 : 0;
      if (p.will) flags |= 0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
      if (p.password !== undefined) flags |= 0x40;
      if (user >= 0) flags |= 0x80;
      buf[off++] = flags;
      if (!Number.isInteger(p.keepalive) || p.keepalive < 0 || p.keepalive > 0xffff) throw new MqttProtocolError(`bad keepalive ${p.keepalive}`);
      buf.writeUInt16BE(p.keepalive, off);
      off = writeStr(buf, off + 2, p.clientId, cid);
      if (p.will) {
        off = writeStr(buf, off, p.will.topic, wt);
        off = writeBin(buf, off, p.will.payload);
      }
      if (p.username !== undefined) off = writeStr(buf, off, p.username, user);
      if (p.password !== undefined) writeBin(buf, off, p.password);
      return buf;
    }
    case "connack": {
      const [buf, o] = start(0x20, 2);
      buf[o] = p.sessionPresent ? 1 : 0;
      buf[o + 1] = p.returnCode;
      return buf;
    }
    case "publish":
      return encodePublish(p.topic, p.payload, p.qos, p.messageId, p.retain, p.dup);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
    case "unsuback": {
      const [buf, o] = start((TYPE_CODES[p.type] << 4) | (p.type === "pubrel" ? 2 : 0), 2);
      buf.writeUInt16BE(checkId(p.messageId), o);
      return buf;
    }
    case "subscribe": {
      const lens = p.subscriptions.map((s) => strBytes(s.topic));
      const [buf, o] = start(0x82, 2 + lens.reduce((a, n) => a + 3 + n, 0));
      buf.writeUInt16BE(checkId(p.messageId), o);
      let off = o + 2;
      p.subscriptions.forEach((s, i) => {
        off = writeStr(buf, off, s.topic, lens[i] ?? 0);
        buf[off++] = s.qos;
      });
      return buf;
    }
    case "suback": {
      const [buf, o] = start(0x90, 2 + p.granted.length);
      buf.writeUInt16BE(checkId(p.messageId), o);
      p.granted.forEach((g, i) => (buf[o + 2 + i] = g));
      return buf;
    }
    case "unsubscribe": {
      const lens = p.topics.map(strBytes);
      const [buf, o] = start(0xa2, 2 + lens.reduce((a, n) => a + 2 + n, 0));
      buf.writeUInt16BE(checkId(p.messageId), o);
      let off = o + 2;
      p.topics.forEach((t, i) => (off = writeStr(buf, off, t, lens[i] ?? 0)));
      return buf;
    }
    case "pingreq":
    case "pingresp":
    case "disconnect":
      return start(TYPE_CODES[p.type] << 4, 0)[0];
  }
}

// ---------------------------------------------------------------- decoding

/** A cursor over one packet's body; every read is bounds-checked. */
class Reader {
  off = 0;
  constructor(readonly b: Buffer) {}
  get left(): number {
    return this.b.length - this.off;
  }
  u8(what: string): number {
    if (this.left < 1) throw new MqttProtocolError(`${what} missing`);
    return this.b[this.off++] as number;
  }
  u16(what: string): number {
    if (this.left < 2) throw new MqttProtocolError(`${what} missing`);
    const v = this.b.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  bin(what: string): Buffer {
    const n = this.u16(what);
    if (this.left < n) throw new MqttProtocolError(`${what} is cut short`);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  str(what: string): string {
    return this.bin(what).toString("utf8");
  }
  id(): number {
    const v = this.u16("packet id");
    if (v === 0) throw new MqttProtocolError("packet id 0");
    return v;
  }
  end(what: string): void {
    if (this.left !== 0) throw new MqttProtocolError(`${this.left} stray bytes after ${what}`);
  }
}

function qosOf(v: number, what: string): QoS {
  if (v > 2) throw new MqttProtocolError(`${what}: QoS ${v}`);
  return v as QoS;
}

const ACKS = ["puback", "pubrec", "pubrel", "pubcomp"] as const;

/** Decode one packet from its first byte and its body (exactly remaining-length bytes). */
export function decodePacket(first: number, body: Buffer): Packet {
  const type = first >> 4;
  const flags = first & 0x0f;
  const r = new Reader(body);
  if (type !== 3 && flags !== (type === 6 || type === 8 || type === 10 ? 2 : 0)) {
    throw new MqttProtocolError(`packet type ${type} with reserved flags ${flags}`);
  }
  switch (type) {
    case 1: {
      const proto = r.str("protocol name");
      const level = r.u8("protocol level");
      if (proto !== "MQTT" || level !== 4) throw new MqttProtocolError(`not MQTT 3.1.1 (${proto} level ${level})`);
      const f = r.u8("connect flags");
      if (f & 1) throw new MqttProtocolError("reserved connect flag set");
      const keepalive = r.u16("keepalive");
      const p: ConnectPacket = { type: "connect", clientId: r.str("client id"), clean: (f & 2) !== 0, keepalive };
      if (f & 4) p.will = { topic: r.str("will topic"), payload: r.bin("will message"), qos: qosOf((f >> 3) & 3, "will"), retain: (f & 0x20) !== 0 };
      else if (f & 0x38) throw new MqttProtocolError("will flags without a will");
      if (f & 0x80) p.username = r.str("user name");
      if (f & 0x40) p.password = r.bin("password");
      r.end("CONNECT");
      return p;
    }
    case 2: {
      const ack = r.u8("connack flags");
      if (ack & 0xfe) throw new MqttProtocolError("reserved connack flags set");
      const p: ConnackPacket = { type: "connack", sessionPresent: ack === 1, returnCode: r.u8("return code") };
      r.end("CONNACK");
      return p;
    }
    case 3: {
      const qos = qosOf((flags >> 1) & 3, "PUBLISH");
      const topic = r.str("topic");
      const p: PublishPacket = { type: "publish", topic, payload: body, qos, dup: (flags & 8) !== 0, retain: (flags & 1) !== 0 };
      if (qos > 0) p.messageId = r.id();
      p.payload = body.subarray(r.off);
      return p;
    }
    case 4:
    case 5:
    case 6:
    case 7: {
      const p: AckPacket = { type: ACKS[type - 4] as AckPacket["type"], messageId: r.id() };
      r.end(p.type);
      return p;
    }
    case 8: {
      const p: SubscribePacket = { type: "subscribe", messageId: r.id(), subscriptions: [] };
      while (r.left > 0) p.subscriptions.push({ topic: r.str("topic filter"), qos: qosOf(r.u8("requested QoS"), "SUBSCRIBE") });
      if (p.subscriptions.length === 0) throw new MqttProtocolError("SUBSCRIBE without topics");
      return p;
    }
    case 9: {
      const p: SubackPacket = { type: "suback", messageId: r.id(), granted: [] };
      while (r.left > 0) {
        const g = r.u8("granted QoS");
        if (g > 2 && g !== SUBACK_FAILURE) throw new MqttProtocolError(`SUBACK: granted QoS ${g}`);
        p.granted.push(g);
      }
      if (p.granted.length === 0) throw new MqttProtocolError("SUBACK without return codes");
      return p;
    }
    case 10: {
      const p: UnsubscribePacket = { type: "unsubscribe", messageId: r.id(), topics: [] };
      while (r.left > 0) p.topics.push(r.str("topic filter"));
      if (p.topics.length === 0) throw new MqttProtocolError("UNSUBSCRIBE without topics");
      return p;
    }
    case 11: {
      const p: AckPacket = { type: "unsuback", messageId: r.id() };
      r.end("UNSUBACK");
      return p;
    }
    case 12:
    case 13:
    case 14: {
      const t = type === 12 ? "pingreq" : type === 13 ? "pingresp" : "disconnect";
      r.end(t);
      return { type: t };
    }
    default:
      throw new MqttProtocolError(`reserved packet type ${type}`);
  }
}

/** The routing of a PUBLISH too big to buffer, from its first bytes. */
function decodeOversized(first: number, head: Buffer, size: number): OversizedPublish {
  const r = new Reader(head);
  const qos = qosOf((first >> 1) & 3, "PUBLISH");
  const p: OversizedPublish = { type: "publish-oversized", topic: r.str("topic"), qos, size };
  if (qos > 0) p.messageId = r.id();
  return p;
}

/**
 * Incremental decoder for one connection. `push(chunk)` returns the packets completed by that chunk;
 * bytes of an unfinished packet are kept (and joined once, when the packet is complete). A remaining
 * length above `maxPacketSize` is never buffered: a PUBLISH that big is reported as `publish-oversized`
 * (topic and packet id, read from its first 64 KiB at most) and the rest of it skipped as it arrives;
 * any other packet that big is a protocol error.
 */
export class MqttParser {
  private chunks: Buffer[] = [];
  private total = 0;
  /** Bytes the packet at the head of the buffer needs in all, once its header is known (0: not yet). */
  private need = 0;
  /** Bytes of an oversized PUBLISH still to be skipped. */
  private skip = 0;

  constructor(readonly maxPacketSize: number) {}

  /** Bytes held for an unfinished packet. */
  get buffered(): number {
    return this.total;
  }

  push(input: Buffer): Array<Packet | OversizedPublish> {
    const out: Array<Packet | OversizedPublish> = [];
    let chunk = input;
    if (this.skip > 0) {
      if (chunk.length <= this.skip) {
        this.skip -= chunk.length;
        return out;
      }
      chunk = chunk.subarray(this.skip);
      this.skip = 0;
    }
    let data: Buffer;
    if (this.total === 0) data = chunk;
    else {
      this.chunks.push(chunk);
      this.total += chunk.length;
      if (this.need > this.total) return out;
      data = Buffer.concat(this.chunks, this.total);
    }
    this.chunks = [];
    this.total = 0;
    this.need = 0;
    let off = 0;
    while (off < data.length) {
      // Fixed header: type/flags byte, then the remaining length in 1..4 varint bytes.
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      while (i < data.length) {
        const b = data[i++] as number;
        len += (b & 0x7f) * mul;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        mul *= 128;
        if (i - off > 4) throw new MqttProtocolError("remaining length longer than 4 bytes");
      }
      if (!complete) break;
      if (len > this.maxPacketSize) {
        const first = data[off] as number;
        if (first >> 4 !== 3) throw new MqttProtocolError(`packet of ${len} bytes exceeds the ${this.maxPacketSize}-byte limit`);
        const head = Math.min(len, 2 + 0xffff + 2);
        if (i + head > data.length) {
          this.need = i + head - off;
          break;
        }
        out.push(decodeOversized(first, data.subarray(i, i + head), len));
        if (data.length - i >= len) {
          off = i + len;
          continue;
        }
        this.skip = len - (data.length - i);
        off = data.length;
        break;
      }
      if (i + len > data.length) {
        this.need = i + len - off;
        break;
      }
      out.push(decodePacket(data[off] as number, data.subarray(i, i + len)));
      off = i + len;
    }
    if (off < data.length) {
      const rest = data.subarray(off);
      this.chunks = [rest];
      this.total = rest.length;
    }
    return out;
  }
}

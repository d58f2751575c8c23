/**
 * MQTT 3.1.1 on the wire, pure (no I/O), sending side: the packet types remos uses (CONNECT, CONNACK,
 * PUBLISH with QoS 0/1/2, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK,
 * PINGREQ, PINGRESP, DISCONNECT), `MqttProtocolError`, and `encodePacket`/`encodePublish` to bytes. The
 * receiving side, the incremental parser, is mqtt-parser.ts.
 *
 * Mongoose OS firmware, aedes and the brokers remos meets all speak 3.1.1, so MQTT 5 is not implemented.
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

const NOT_IN_TOPIC_NAMES = /[+#\0]/;
/** A wildcard that is not a whole level, `#` not last, or U+0000 (MQTT 3.1.1 §4.7.1). */
const BAD_IN_FILTERS = /\0|[^/][+#]|\+[^/]|#./;

/** The topic filters of a SUBSCRIBE/UNSUBSCRIBE, checked: brokers drop a connection that sends a bad one. */
function checkFilters(filters: string[]): void {
  if (filters.length === 0) throw new MqttProtocolError("SUBSCRIBE/UNSUBSCRIBE needs at least one topic filter");
  for (const f of filters) {
    if (f.length === 0 || BAD_IN_FILTERS.test(f)) throw new MqttProtocolError(`${JSON.stringify(f)} is not an MQTT topic filter`);
  }
}

/**
 * One PUBLISH, the hot path: the payload goes straight into the packet buffer (a string is written as
 * UTF-8 without an intermediate Buffer). The topic must be a topic name (MQTT 3.1.1 §4.7): not empty, no
 * wildcard, no U+0000 — brokers drop a connection that publishes to one (mosquitto does).
 */
export function encodePublish(topic: string, payload: string | Buffer, qos: QoS, messageId: number | undefined, retain = false, dup = false): Buffer {
  if (topic.length === 0 || NOT_IN_TOPIC_NAMES.test(topic)) throw new MqttProtocolError(`cannot publish to ${JSON.stringify(topic)}: not an MQTT topic name`);
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
      if (p.password !== undefined && p.username === undefined) throw new MqttProtocolError("a password needs a user name (MQTT 3.1.1 §3.1.2.9)");
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
      checkFilters(p.subscriptions.map((s) => s.topic));
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
      checkFilters(p.topics);
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

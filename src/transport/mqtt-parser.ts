/**
 * MQTT 3.1.1 on the wire, pure (no I/O), receiving side: `decodePacket` and `MqttParser`, an incremental
 * decoder fed arbitrary byte chunks (a packet split anywhere, many packets per chunk) with a bound on the
 * packet size. Garbage never makes it throw anything but `MqttProtocolError` (a TransportError): the
 * connection that carried it is then unusable and is closed by its owner. Packet types and encoding are
 * in mqtt-wire.ts.
 */
import { isUtf8 } from "node:buffer";
import {
  type AckPacket,
  type ConnackPacket,
  type ConnectPacket,
  MqttProtocolError,
  type OversizedPublish,
  type Packet,
  type PublishPacket,
  type QoS,
  SUBACK_FAILURE,
  type SubackPacket,
  type SubscribePacket,
  type UnsubscribePacket,
} from "./mqtt-wire.js";

const EMPTY = Buffer.alloc(0);

/**
 * A cursor over one packet's body; every read is bounds-checked. Decoding is synchronous, so one reader
 * serves every packet (no allocation per packet); it is pointed back at EMPTY after each so that it holds
 * no buffer.
 */
class Reader {
  off = 0;
  b: Buffer = EMPTY;
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

/**
 * A PUBLISH topic name as MQTT 3.1.1 allows it (§4.7.3, §1.5.3): at least one byte, well-formed UTF-8,
 * no U+0000, no wildcard. Anything else would be routed under a mangled name (U+FFFD for bad bytes).
 */
function topicName(r: Reader): string {
  const n = r.u16("topic");
  if (r.left < n) throw new MqttProtocolError("topic is cut short");
  if (n === 0) throw new MqttProtocolError("PUBLISH with an empty topic");
  const b = r.b;
  const start = r.off;
  const end = start + n;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (c === 0 || c === 0x23 || c === 0x2b) throw new MqttProtocolError(`PUBLISH topic with ${c === 0 ? "U+0000" : `the wildcard ${String.fromCharCode(c)}`}`);
    if (c >= 0x80) ascii = false;
  }
  if (!ascii && !isUtf8(b.subarray(start, end))) throw new MqttProtocolError("PUBLISH topic is not UTF-8");
  r.off = end;
  return b.toString("utf8", start, end);
}

function qosOf(v: number, what: string): QoS {
  if (v > 2) throw new MqttProtocolError(`${what}: QoS ${v}`);
  return v as QoS;
}

const ACKS = ["puback", "pubrec", "pubrel", "pubcomp"] as const;
const reader = new Reader();

/** Decode one packet from its first byte and its body (exactly remaining-length bytes). */
export function decodePacket(first: number, body: Buffer): Packet {
  reader.b = body;
  reader.off = 0;
  try {
    return decodeBody(first, reader);
  } finally {
    reader.b = EMPTY;
  }
}

function decodeBody(first: number, r: Reader): Packet {
  const body = r.b;
  const type = first >> 4;
  const flags = first & 0x0f;
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
      const topic = topicName(r);
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
  const r = reader;
  r.b = head;
  r.off = 0;
  try {
    const qos = qosOf((first >> 1) & 3, "PUBLISH");
    const p: OversizedPublish = { type: "publish-oversized", topic: topicName(r), qos, size };
    if (qos > 0) p.messageId = r.id();
    return p;
  } finally {
    r.b = EMPTY;
  }
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
    if (this.total > 0) this.chunks.length = 0;
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
      this.chunks.push(rest);
      this.total = rest.length;
    }
    return out;
  }
}

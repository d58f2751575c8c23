/**
 * The UART / serial transport (spec §2.1), both ends, over any byte link (a serial port through the
 * `serialport` package, a pseudo-terminal, or an in-process pair). Byte-level framing lives in
 * `serial-framing.ts` (the device end's receiver in `serial-device-framing.ts`), the channels
 * (handshake, pacing, flow control, sticky modes) in `serial-channels.ts`; this file opens ports and
 * holds the entry points.
 *
 * Client end (`connect`, what mos does): DTR/RTS low after open, input flushed, then the `"""\x04"""\n\n`
 * handshake every 200 ms until the device answers `"""\x04"""` (then `"""` is written back). Each frame
 * goes out as `\n"""<ascii json><crc32>"""\n`. Decisions:
 * - The handshake runs once per connection, not before every frame as mos does when pacing (that costs
 *   mos at least 200 ms per call); the device's sticky modes make a repeat unnecessary.
 * - Pacing (16-byte chunks, 5 ms apart) only at 115200 baud and without `noPacing`, as mos: at other
 *   rates the user chose the speed deliberately.
 * - A CRC mismatch drops that frame (logged) and keeps the session, unlike mos which disconnects.
 * - Send limit 4092 bytes: the firmware drops a partial frame above rpc.max_frame_size (4096) + 6 bytes,
 *   and a CRC frame can sit in its buffer with 8 CRC chars and 2 quotes of the closing `"""`. Received
 *   frames may be larger (a real device's Config.Get reply often is): up to 64 KiB are accepted.
 *
 * Device end (`serveSerial`, the firmware's rules): sticky `"""` and CRC modes, buffer discarded on a
 * byte >= 0x80, `"\n"` answer to empty frames (sent with the next output), `"""\x04"""` to the 0x04 frame,
 * partial frames above maxFrameSize + 6 dropped, console text written only between frames.
 */
import { EventEmitter } from "node:events";
import { existsSync, readSync, writeSync } from "node:fs";
import type { Duplex } from "node:stream";
import type { SerialPort } from "serialport";
import { AbortedError, ChannelClosedError, TransportError, UsageError } from "../errors.js";
import { debug } from "../log.js";
import type { Channel } from "../rpc/channel.js";
import {
  type ByteLink,
  DEFAULT_BAUD_RATE,
  SERIAL_MAX_FRAME_SIZE,
  SerialClientChannel,
  SerialDeviceChannel,
} from "./serial-channels.js";
import type { ConnectOptions } from "./options.js";

export {
  type ByteLink,
  DEFAULT_BAUD_RATE,
  SERIAL_MAX_FRAME_SIZE,
  SERIAL_RECEIVE_LIMIT,
  SERIAL_SEND_LIMIT,
  SerialClientChannel,
  SerialDeviceChannel,
} from "./serial-channels.js";

/** The device end of a serial link. */
export interface SerialDeviceEnd {
  channel: Channel;
  /** Device console output (log lines); never lands inside a frame. */
  writeConsole(text: string): void;
  close(): Promise<void>;
}

function deviceEnd(channel: SerialDeviceChannel): SerialDeviceEnd {
  return { channel, writeConsole: (text) => channel.writeConsole(text), close: () => channel.close() };
}

interface PortOptions {
  hwFlowControl?: boolean;
  controlLines?: "low" | "high" | "untouched";
}

/** Open a serial port the way mos does: 8N1, DTR and RTS driven low (unless told otherwise), input flushed. */
async function openPort(path: string, baudRate: number, o: PortOptions = {}): Promise<SerialPort> {
  if (!Number.isInteger(baudRate) || baudRate <= 0) throw new UsageError(`invalid baud rate ${baudRate}`);
  const { SerialPort } = await import("serialport");
  const port = new SerialPort({ path, baudRate, dataBits: 8, parity: "none", stopBits: 1, rtscts: o.hwFlowControl === true, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    port.open((e) => (e ? reject(new TransportError(`cannot open serial port ${path}: ${e.message.replace(/^Error: /, "")}`, { cause: e })) : resolve())),
  );
  // Low DTR/RTS keep ESP auto-reset circuits from resetting the board (high on inverted boards). A pty
  // has no control lines. With RTS/CTS flow control the driver owns RTS, so only DTR is set.
  const lines = o.controlLines ?? "low";
  if (lines !== "untouched") {
    const level = lines === "high";
    await new Promise<void>((resolve) =>
      port.set(o.hwFlowControl ? { dtr: level } : { dtr: level, rts: level }, (e) => {
        if (e) debug("serial", `could not drive DTR/RTS ${lines} (not a UART?)`, { path, error: e.message });
        resolve();
      }),
    );
  }
  await new Promise<void>((resolve) => port.flush(() => resolve()));
  nonBlockingIo(port);
  return port;
}

/** serialport's readiness poller of a port (a uv_poll on its fd; events 1 readable, 2 writable). */
type PortPoller = EventEmitter & { poll(events: number): void };

/** The part of serialport's Unix port binding (Linux, macOS) that nonBlockingIo replaces and uses. */
interface UnixPortBinding {
  fd: number | null;
  poller: PortPoller;
  writeOperation?: Promise<void> | null;
  read(buffer: Buffer, offset: number, length: number): Promise<{ bytesRead: number; buffer: Buffer }>;
  write(buffer: Buffer): Promise<void>;
}

function isUnixPortBinding(b: unknown): b is UnixPortBinding {
  const x = b as Partial<UnixPortBinding> | undefined;
  return (
    typeof x?.fd === "number" &&
    x.poller instanceof EventEmitter &&
    typeof x.poller.poll === "function" &&
    typeof x.read === "function" &&
    typeof x.write === "function" &&
    "writeOperation" in x // drain() awaits it: the write below keeps it
  );
}

const READABLE = 1;
const WRITABLE = 2;

function wouldBlock(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "EAGAIN" || code === "EWOULDBLOCK" || code === "EINTR";
}

/** An error serialport's stream treats as the port going away (it closes with a disconnect). */
function disconnected(e: unknown): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  return Object.assign(err, { disconnect: true });
}

/**
 * The port's reads and writes as non-blocking syscalls made in this thread when the port's poller reports
 * it readable or writable. serialport makes each one an fs.read / fs.write in libuv's thread pool (a
 * hand-off and a wake-up of another thread per syscall, and before every wait for "readable" a read in
 * the pool that only comes back EAGAIN); the fd is already O_NONBLOCK, so the syscall itself never waits.
 * A read that returned less than asked drained the tty, so the next one waits for "readable" first
 * instead of failing with EAGAIN.
 *
 * Also: serialport reads a port whose other end went away (a pty whose socat ended, some USB adapters)
 * as an endless run of zero-byte reads, a busy loop with no close event. A zero-byte read on a
 * non-blocking tty is end of file: here it is an error, which serialport turns into a disconnect (close),
 * and the channel into ChannelClosedError. Unix only (Windows reads through overlapped I/O); where the
 * binding does not have the expected shape the library's own I/O stays, and portLink's presence check.
 * Exported for its tests.
 */
export function nonBlockingIo(port: Pick<SerialPort, "port">): void {
  const binding: unknown = port.port;
  if (process.platform === "win32" || !isUnixPortBinding(binding)) {
    if (process.platform !== "win32") debug("serial", "non-blocking I/O not installed: unexpected binding");
    return;
  }
  const poller = binding.poller;
  const notOpen = (): Error => Object.assign(new Error("Port is not open"), { canceled: true });
  // The poller's own once() restarts its uv_poll for that one event only, dropping the other: a read
  // waiting for "readable" while a write waits for "writable" would never hear of its data, and two ends
  // both blocked writing would wait for each other for ever. And after an event its native side watches
  // every event ever asked for (a mask that only grows): a "writable" nobody waits for would fire at once
  // after each read, or for ever while reads are paused with bytes unread. So the poll is set here, to
  // exactly the events being waited for, at each wait and after each event (0 stops it).
  let waiting = 0;
  const ready = (event: "readable" | "writable"): Promise<void> =>
    new Promise((resolve, reject) => {
      if (binding.fd === null) return reject(notOpen());
      const bit = event === "readable" ? READABLE : WRITABLE;
      const listener = (err: Error | null): void => {
        waiting &= ~bit;
        if (err) return reject(err);
        if (binding.fd !== null) poller.poll(waiting);
        resolve();
      };
      EventEmitter.prototype.once.call(poller, event, listener);
      waiting |= bit;
      try {
        poller.poll(waiting);
      } catch (e) {
        poller.off(event, listener);
        waiting &= ~bit;
        reject(disconnected(e));
      }
    });
  let drained = false;
  binding.read = async (buffer, offset, length) => {
    for (;;) {
      if (drained) {
        await ready("readable");
        drained = false;
      }
      if (binding.fd === null) throw notOpen();
      let bytesRead: number;
      try {
        bytesRead = readSync(binding.fd, buffer, offset, length, null);
      } catch (e) {
        if (wouldBlock(e)) {
          drained = true;
          continue;
        }
        throw disconnected(e);
      }
      if (bytesRead === 0) throw disconnected(Object.assign(new Error("end of file: the other end of the port went away"), { code: "EOF" }));
      drained = bytesRead < length;
      return { bytesRead, buffer };
    }
  };
  const writeAll = async (buffer: Buffer): Promise<void> => {
    let done = 0;
    while (done < buffer.length) {
      if (binding.fd === null) throw notOpen();
      let n = 0;
      try {
        n = writeSync(binding.fd, buffer, done, buffer.length - done);
      } catch (e) {
        if (!wouldBlock(e)) throw disconnected(e);
      }
      // nothing written (EAGAIN, or a tty that takes no byte): wait, never spin
      if (n === 0) await ready("writable");
      done += n;
    }
  };
  binding.write = (buffer) => {
    // as the library's write: drain() awaits the write in progress
    const op = writeAll(buffer).finally(() => {
      if (binding.writeOperation === op) binding.writeOperation = null;
    });
    binding.writeOperation = op;
    return op;
  };
}

/** How often a port's device node is checked for having gone away (unplugged, or socat ended). */
const PRESENCE_CHECK_MS = 500;

function portLink(port: SerialPort, path: string): ByteLink {
  let ended = false;
  // serialport sees a vanished pty as endless zero-byte reads (no close event, a busy thread) and some USB
  // adapters likewise: the device node disappearing is the reliable sign, so watch for it.
  const presence =
    process.platform === "win32"
      ? undefined
      : setInterval(() => {
          if (existsSync(path)) return;
          end(new Error(`${path} disappeared`));
          port.close(() => undefined);
        }, PRESENCE_CHECK_MS).unref();
  const link: ByteLink = {
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        if (ended || !port.isOpen) return reject(new ChannelClosedError(`serial port ${path} is closed`));
        port.write(data, (e) => (e ? reject(new TransportError(`write to ${path} failed: ${e.message}`, { cause: e })) : resolve()));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        ended = true;
        clearInterval(presence);
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
  const end = (reason?: Error): void => {
    clearInterval(presence);
    if (ended) return; // our own close: the channel already knows
    ended = true;
    link.onEnd?.(reason);
  };
  port.on("data", (d: Buffer) => link.onData?.(d));
  port.on("error", (e: Error) => end(e));
  port.on("close", (e?: Error | null) => end(e ?? undefined));
  return link;
}

/** The device path of a serial port URL (`serial:///dev/x`, `serial://COM3`). */
export function portPath(url: URL): string {
  const raw = decodeURIComponent((url.host ? "/" + url.host : "") + url.pathname);
  if (/^\/COM\d+$/i.test(raw)) return raw.slice(1).toUpperCase();
  if (!raw || raw === "/") throw new UsageError(`no device path in port "${url.href}" (e.g. serial:///dev/ttyUSB0)`);
  return raw;
}

/** Handshake on a link and return the channel (the link is closed on failure). */
async function openClientOn(link: ByteLink, path: string, options: ConnectOptions): Promise<SerialClientChannel> {
  const baudRate = options.baudRate ?? DEFAULT_BAUD_RATE;
  const channel = new SerialClientChannel(link, path, {
    pacing: !options.noPacing && !options.hwFlowControl && baudRate === DEFAULT_BAUD_RATE,
    onConsole: options.onConsole,
  });
  try {
    await channel.handshake(options.timeoutMs ?? 20_000, options.signal);
  } catch (e) {
    await channel.close().catch(() => undefined);
    throw e;
  }
  return channel;
}

/** Client end: `serial:///dev/ttyUSB0` (url.ts turns bare paths and COMn into such URLs). */
export async function connect(url: URL, options: ConnectOptions): Promise<Channel> {
  const path = portPath(url);
  if (options.signal?.aborted) throw new AbortedError(`connect to ${path} aborted`);
  const port = await openPort(path, options.baudRate ?? DEFAULT_BAUD_RATE, options);
  return openClientOn(portLink(port, path), path, options);
}

/** Device end on a serial port or pty: RPC channel type "UART", peer "UART0". */
export async function serveSerial(opts: { path: string; baudRate?: number; maxFrameSize?: number }): Promise<SerialDeviceEnd> {
  const port = await openPort(opts.path, opts.baudRate ?? DEFAULT_BAUD_RATE);
  return deviceEnd(new SerialDeviceChannel(portLink(port, opts.path), opts.maxFrameSize ?? SERIAL_MAX_FRAME_SIZE));
}

/**
 * A raw serial port for `mos console` (DTR/RTS low as for RPC). The SerialPort is itself the Duplex:
 * read the device's bytes, write keystrokes, `destroy()` to close. If the port goes away the stream
 * emits 'error' (a TransportError) and 'close': listen for 'error'.
 */
export async function openRawSerial(path: string, opts: { baudRate?: number } & PortOptions = {}): Promise<Duplex> {
  const port = await openPort(path, opts.baudRate ?? DEFAULT_BAUD_RATE, opts);
  if (process.platform !== "win32") {
    // As in portLink: a vanished device node ends the stream (with an 'error', then 'close').
    const presence = setInterval(() => {
      if (existsSync(path)) return;
      clearInterval(presence);
      port.destroy(new TransportError(`serial port ${path} disappeared`));
    }, PRESENCE_CHECK_MS).unref();
    port.once("close", () => clearInterval(presence));
  }
  return port;
}

/**
 * An in-process serial cable: a device end and a host port joined by in-memory byte streams, with the
 * exact serial framing on both sides (the demo uses it where socat is absent). One client at a time
 * may have the port open; closing the client leaves the device running (as unplugging a terminal
 * does), closing the device ends the client. Pacing is off unless `noPacing: false` is given.
 */
export function createSerialPair(opts: { maxFrameSize?: number; name?: string } = {}): {
  openClient(options?: ConnectOptions): Promise<Channel>;
  device: SerialDeviceEnd;
} {
  const name = opts.name ?? "serial-pair";
  let client: ByteLink | undefined;
  let deviceGone = false;
  const deviceLink: ByteLink = {
    async write(data) {
      if (deviceGone) throw new ChannelClosedError(`${name}: device end is closed`);
      const to = client;
      const copy = Buffer.from(data);
      setImmediate(() => {
        if (to && client === to) to.onData?.(copy);
      });
    },
    async close() {
      deviceGone = true;
      const to = client;
      client = undefined;
      setImmediate(() => to?.onEnd?.());
    },
  };
  const device = deviceEnd(new SerialDeviceChannel(deviceLink, opts.maxFrameSize ?? SERIAL_MAX_FRAME_SIZE));
  return {
    device,
    async openClient(options: ConnectOptions = {}) {
      if (deviceGone) throw new TransportError(`${name}: the in-process device is closed`);
      if (client) throw new TransportError(`${name}: the port is already open`);
      const link: ByteLink = {
        async write(data) {
          if (client !== link) throw new ChannelClosedError(`${name}: port is closed`);
          const copy = Buffer.from(data);
          setImmediate(() => {
            if (!deviceGone) deviceLink.onData?.(copy);
          });
        },
        async close() {
          if (client === link) client = undefined;
        },
      };
      client = link;
      return openClientOn(link, name, { ...options, noPacing: options.noPacing ?? true });
    },
  };
}

/**
 * serial.ts `nonBlockingIo`: a port binding's reads and writes as non-blocking syscalls on this thread,
 * woken by the port's poller. Here the binding is a stand-in around a real non-blocking fd (a FIFO opened
 * read-write: its reads fail with EAGAIN when it is empty, its writes when its 64 KiB are full) and a
 * poller that records what it is asked to watch; the test plays the poller's events. What it checks: the
 * watched events are always exactly those waited for (the library's own poller drops one when both are
 * awaited, and keeps watching ones nobody waits for), no byte is lost or reordered, and a close wakes every
 * wait with a cancellation.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SerialPort } from "serialport";
import { nonBlockingIo } from "../../src/transport/serial.js";

const READABLE = 1;
const WRITABLE = 2;

class RecordingPoller extends EventEmitter {
  /** Every mask it was asked to watch, in order (0: stop). */
  readonly polls: number[] = [];
  poll(events: number): void {
    this.polls.push(events);
  }
  get watching(): number {
    return this.polls.at(-1) ?? 0;
  }
  /** The native poller's cancellation on close: every waiter gets an error. */
  cancel(): void {
    const err = Object.assign(new Error("Canceled"), { canceled: true });
    for (const e of ["readable", "writable"]) this.emit(e, err);
  }
}

interface FakeBinding {
  fd: number | null;
  poller: RecordingPoller;
  writeOperation: Promise<void> | null;
  read(buffer: Buffer, offset: number, length: number): Promise<{ bytesRead: number; buffer: Buffer }>;
  write(buffer: Buffer): Promise<void>;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("serial non-blocking I/O (nonBlockingIo)", { skip: process.platform === "win32" ? "Unix only" : false }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "remos-nbio-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function fakePort(name: string): { binding: FakeBinding; close(): void } {
    const path = join(dir, name);
    execFileSync("mkfifo", [path]);
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    const binding: FakeBinding = {
      fd,
      poller: new RecordingPoller(),
      writeOperation: null,
      read: () => Promise.reject(new Error("the library's read must not be used")),
      write: () => Promise.reject(new Error("the library's write must not be used")),
    };
    nonBlockingIo({ port: binding } as unknown as Pick<SerialPort, "port">);
    return {
      binding,
      close: () => {
        binding.poller.cancel();
        closeSync(fd);
        binding.fd = null;
      },
    };
  }

  it("watches exactly the events waited for, with a read and a write waiting at once, and loses no byte", async () => {
    const { binding, close } = fakePort("both");
    const buf = Buffer.alloc(100_000);
    // nothing to read yet: the read fails with EAGAIN once, then waits for "readable"
    const reading = binding.read(buf, 0, buf.length);
    await tick();
    assert.equal(binding.poller.watching, READABLE);
    // 70,000 bytes into a 64 KiB FIFO: the write fills it and waits for "writable", the read still waiting
    const data = Buffer.alloc(70_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const writing = binding.write(data);
    assert.equal(binding.writeOperation !== null, true, "drain() has the write in progress to wait for");
    await tick();
    assert.equal(binding.poller.watching, READABLE | WRITABLE, "a write waiting must not drop the read's wait");
    // the FIFO is readable: the read takes what is there, and the poll goes back to the write alone
    binding.poller.emit("readable", null);
    const first = await reading;
    assert.equal(first.bytesRead, 65_536);
    assert.equal(binding.poller.watching, WRITABLE);
    // room again: the write finishes, and nothing is watched any more
    binding.poller.emit("writable", null);
    await writing;
    assert.equal(binding.writeOperation, null);
    assert.equal(binding.poller.watching, 0, "no event is watched that nobody waits for");
    // the rest arrives in order after what the first read got (that read was short: the next one waits)
    const restRead = binding.read(buf, first.bytesRead, buf.length - first.bytesRead);
    await tick();
    assert.equal(binding.poller.watching, READABLE);
    binding.poller.emit("readable", null);
    const rest = await restRead;
    assert.equal(first.bytesRead + rest.bytesRead, data.length);
    assert.deepEqual(buf.subarray(0, data.length), data);
    close();
  });

  it("a read shorter than asked waits for readiness before the next read", async () => {
    const { binding, close } = fakePort("short");
    await binding.write(Buffer.from("abc"));
    const buf = Buffer.alloc(64);
    const r = await binding.read(buf, 0, buf.length);
    assert.equal(buf.toString("latin1", 0, r.bytesRead), "abc");
    const before = binding.poller.polls.length;
    const next = binding.read(buf, 0, buf.length);
    await tick();
    assert.equal(binding.poller.polls.length, before + 1, "the drained tty is not read again before it is ready");
    assert.equal(binding.poller.watching, READABLE);
    await binding.write(Buffer.from("de"));
    binding.poller.emit("readable", null);
    const r2 = await next;
    assert.equal(buf.toString("latin1", 0, r2.bytesRead), "de");
    close();
  });

  it("a close wakes a waiting read and write with a cancellation, and later calls fail as not open", async () => {
    const { binding, close } = fakePort("close");
    const buf = Buffer.alloc(16);
    const reading = binding.read(buf, 0, buf.length);
    const writing = binding.write(Buffer.alloc(70_000));
    await tick();
    close();
    await assert.rejects(reading, (e: Error & { canceled?: boolean }) => e.canceled === true);
    await assert.rejects(writing, /Canceled/);
    await assert.rejects(binding.read(buf, 0, buf.length), /not open/);
    await assert.rejects(binding.write(Buffer.from("x")), /not open/);
  });
});

import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeviceError } from "../../src/errors.js";
import type { SimI2cDevice } from "../../src/device/hal/i2c.js";
import { Sht31Sim, sht31Crc, sht31Decode } from "../../src/device/hal/sht31.js";
import { EEPROM_SIZE, Eeprom24c32Sim } from "../../src/device/hal/eeprom.js";
import { createSimulatedI2c } from "../../src/device/hal/sim-i2c.js";
import { registerI2cService } from "../../src/device/services/i2c.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "remos-i2c-"));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (s: string): Uint8Array => Buffer.from(s, "hex");

describe("SHT31 simulation", () => {
  it("computes the datasheet CRC (0xBEEF → 0x92)", () => {
    assert.equal(sht31Crc(Uint8Array.of(0xbe, 0xef)), 0x92);
    assert.equal(sht31Crc(Uint8Array.of(0x00, 0x00)), 0x81);
  });

  it("single shot without clock stretching: NACK while measuring, then 6 bytes with valid CRCs", () => {
    let t = 1_000_000;
    const s = new Sht31Sim({ now: () => t });
    assert.equal(s.write(hex("2400")), true);
    assert.equal(s.read(6), undefined, "busy: NACK");
    assert.equal(s.write(new Uint8Array(0)), false, "busy: the address is not acknowledged");
    t += 16;
    const data = s.read(6) as Uint8Array;
    const m = sht31Decode(data);
    assert.ok(m, "CRCs valid");
    assert.ok(m.temperature > 15 && m.temperature < 30, String(m.temperature));
    assert.ok(m.humidity > 30 && m.humidity < 60, String(m.humidity));
    assert.equal(s.read(6), undefined, "no data left: NACK");
  });

  it("status register, clear, heater and unknown commands", () => {
    let t = 0;
    const s = new Sht31Sim({ now: () => t, random: () => 0.5 });
    const status = (): number => {
      s.write(hex("f32d"));
      const b = s.read(3) as Uint8Array;
      assert.equal(sht31Crc(b.subarray(0, 2)), b[2]);
      return (b[0] << 8) | b[1];
    };
    assert.equal(status(), 0x8010);
    s.write(hex("3041"));
    assert.equal(status(), 0);
    s.write(hex("306d"));
    assert.equal(status() & 0x2000, 0x2000);
    s.write(hex("2400"));
    t += 20;
    const hot = sht31Decode(s.read(6) as Uint8Array);
    s.write(hex("3066"));
    s.write(hex("2400"));
    t += 20;
    const cool = sht31Decode(s.read(6) as Uint8Array);
    assert.ok(hot && cool && hot.temperature > cool.temperature + 2);
    s.write(hex("1234"));
    assert.equal(status() & 0x0002, 0x0002);
    s.write(hex("30a2"));
    t += 2;
    assert.equal(status(), 0x8010);
  });

  it("drifts plausibly between readings", () => {
    let t = 0;
    const s = new Sht31Sim({ now: () => t });
    const temps: number[] = [];
    for (let i = 0; i < 50; i++) {
      s.write(hex("2400"));
      t += 60_000;
      temps.push((sht31Decode(s.read(6) as Uint8Array) as { temperature: number }).temperature);
    }
    for (let i = 1; i < temps.length; i++) assert.ok(Math.abs(temps[i] - temps[i - 1]) < 1, "no jumps");
    assert.ok(new Set(temps.map((x) => x.toFixed(2))).size > 5, "values change");
  });
});

describe("24C32 EEPROM simulation", () => {
  it("wraps page writes at the 32-byte page boundary and reads sequentially with wrap at the end", () => {
    let t = 0;
    const e = new Eeprom24c32Sim({ now: () => t });
    assert.equal(e.write(hex("001e01020304")), true);
    assert.equal(e.read(1), undefined, "write cycle: NACK");
    assert.equal(e.write(new Uint8Array(0)), false, "ACK polling: busy");
    t += 5;
    assert.deepEqual([...e.memory.subarray(0x1e, 0x20)], [1, 2]);
    assert.deepEqual([...e.memory.subarray(0, 2)], [3, 4], "wrapped to the start of page 0");
    assert.equal(e.memory[0x20], 0xff, "the next page is untouched");
    e.write(hex("001e"));
    assert.deepEqual([...(e.read(4) as Uint8Array)], [1, 2, 0xff, 0xff], "sequential read crosses pages");
    e.write(hex("0fff"));
    assert.deepEqual([...(e.read(3) as Uint8Array)], [0xff, 3, 4], "sequential read wraps from 0xfff to 0");
    e.write(hex("f000")); // the top 4 address bits are ignored
    assert.deepEqual([...(e.read(1) as Uint8Array)], [3]);
  });

  it("persists its contents atomically in the state dir", async () => {
    const dir = await tempDir();
    const file = join(dir, "hal", "eeprom-50.bin");
    const a = new Eeprom24c32Sim({ file, writeCycleMs: 0 });
    a.write(hex("0100cafe"));
    await a.flush();
    const b = new Eeprom24c32Sim({ file });
    assert.equal(b.memory.length, EEPROM_SIZE);
    assert.deepEqual([...b.memory.subarray(0x100, 0x102)], [0xca, 0xfe]);
  });
});

/** A plain 8-bit register file device, to test the register methods. */
class RegisterFile implements SimI2cDevice {
  regs = new Uint8Array(256);
  private ptr = 0;
  write(d: Uint8Array): boolean {
    if (d.length === 0) return true;
    this.ptr = d[0];
    for (const b of d.subarray(1)) this.regs[this.ptr++ & 0xff] = b;
    return true;
  }
  read(len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.regs[this.ptr++ & 0xff];
    return out;
  }
}

describe("I2C service", () => {
  async function setup(): Promise<{ client: RpcClient; regs: RegisterFile; setEnabled: (v: boolean) => void }> {
    const dir = await tempDir();
    let enabled = true;
    const sim = createSimulatedI2c(dir, () => enabled);
    const regs = new RegisterFile();
    sim.bus.attach(0x20, regs);
    const server = new RpcServer();
    registerI2cService(server, sim.bus);
    const [a, b] = LoopbackChannel.pair();
    server.serve(b);
    const client = new RpcClient(a, { src: "mos", timeoutMs: 5000 });
    cleanups.push(() => client.close());
    return { client, regs, setEnabled: (v) => (enabled = v) };
  }
  async function err(p: Promise<unknown>): Promise<[number, string]> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof DeviceError, String(e));
      return [e.rpcCode, e.rpcMessage];
    }
    assert.fail("expected an error");
  }

  it("Scan, and SHT31 + EEPROM through Write/Read with lowercase data_hex", async () => {
    const { client } = await setup();
    assert.deepEqual(await client.call("I2C.Scan"), [0x20, 0x44, 0x50]);
    assert.deepEqual(await client.call("I2C.Scan", { bus: 0 }), [0x20, 0x44, 0x50]);
    assert.equal(await client.call("I2C.Write", { addr: 0x44, data_hex: "2C06" }), null);
    const r = await client.call<{ data_hex: string }>("I2C.Read", { addr: 0x44, len: 6 });
    assert.match(r.data_hex, /^[0-9a-f]{12}$/);
    assert.ok(sht31Decode(Buffer.from(r.data_hex, "hex")));

    await client.call("I2C.Write", { addr: 0x50, data_hex: "003e0a0b0c" });
    await sleep(10);
    await client.call("I2C.Write", { addr: 0x50, data_hex: "003e" });
    assert.deepEqual(await client.call("I2C.Read", { addr: 0x50, len: 3 }), { data_hex: "0a0bff" });
    await client.call("I2C.Write", { addr: 0x50, data_hex: "0020" });
    assert.deepEqual(await client.call("I2C.Read", { addr: 0x50, len: 1 }), { data_hex: "0c" }, "wrapped into page 1's start");
  });

  it("register access, big-endian words", async () => {
    const { client, regs } = await setup();
    assert.equal(await client.call("I2C.WriteRegB", { addr: 0x20, reg: 5, value: 0xab }), null);
    assert.equal(regs.regs[5], 0xab);
    assert.deepEqual(await client.call("I2C.ReadRegB", { addr: 0x20, reg: 5 }), { value: 0xab });
    await client.call("I2C.WriteRegW", { addr: 0x20, reg: 8, value: 0x1234 });
    assert.deepEqual([regs.regs[8], regs.regs[9]], [0x12, 0x34]);
    assert.deepEqual(await client.call("I2C.ReadRegW", { addr: 0x20, reg: 8 }), { value: 0x1234 });
  });

  it("errors: 400 missing/invalid args, 503 disabled and NACKs", async () => {
    const { client, setEnabled } = await setup();
    assert.deepEqual(await err(client.call("I2C.Read", { addr: 0x44 })), [400, "addr and len are required"]);
    assert.deepEqual(await err(client.call("I2C.Read", { len: 2 })), [400, "addr and len are required"]);
    assert.equal((await err(client.call("I2C.Read", { addr: 0x44, len: 5000 })))[0], 400);
    assert.deepEqual(await err(client.call("I2C.Write", { addr: 0x44 })), [400, "addr and data_hex are required"]);
    assert.equal((await err(client.call("I2C.Write", { addr: 0x44, data_hex: "abc" })))[0], 400);
    assert.deepEqual(await err(client.call("I2C.ReadRegB", { addr: 0x20 })), [400, "addr and reg are required"]);
    assert.deepEqual(await err(client.call("I2C.WriteRegB", { addr: 0x20, reg: 1 })), [400, "addr, reg and value are required"]);
    assert.equal((await err(client.call("I2C.WriteRegB", { addr: 0x20, reg: 1, value: 256 })))[0], 400);
    assert.deepEqual(await err(client.call("I2C.Read", { addr: 0x10, len: 1 })), [503, "I2C read failed"]);
    assert.deepEqual(await err(client.call("I2C.Write", { addr: 0x10, data_hex: "00" })), [503, "I2C write failed"]);
    assert.deepEqual(await err(client.call("I2C.ReadRegW", { addr: 0x10, reg: 0 })), [503, "error reading value"]);
    assert.deepEqual(await err(client.call("I2C.WriteRegW", { addr: 0x10, reg: 0, value: 1 })), [503, "error writing value"]);
    assert.deepEqual(await err(client.call("I2C.Scan", { bus: 1 })), [503, "I2C is disabled"]);
    setEnabled(false);
    assert.deepEqual(await err(client.call("I2C.Scan")), [503, "I2C is disabled"]);
    assert.deepEqual(await err(client.call("I2C.Read", { addr: 0x44, len: 6 })), [503, "I2C is disabled"]);
  });
});



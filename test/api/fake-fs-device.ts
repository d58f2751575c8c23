/**
 * Test fixture: an RpcServer with in-memory FS.* handlers (spec §3.3 semantics, including "wb" at offset 0
 * and "r+" at offset > 0), optional FS.Sha256, Config.*, Sys.GetInfo and OTA.*; failure injection and an
 * in-flight counter, served over a loopback pair and wrapped in a Device.
 */
import { createHash } from "node:crypto";
import { Device } from "../../src/api/device.js";
import { RpcError } from "../../src/errors.js";
import { RpcServer } from "../../src/rpc/server.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";

export interface FakeOptions {
  sha256?: boolean;
  maxFrameSize?: number;
  /** Called before each FS.Put/FS.Get/OTA.Write; may throw RpcError or return a delay in ms. */
  inject?: (method: string, params: Record<string, unknown>, n: number) => number | void | Promise<number | void>;
  timeoutMs?: number;
  /** Sys.GetInfo mg_id (a remos agent reports `remos/<version>`). */
  mgId?: string;
}

export interface Fake {
  device: Device;
  server: RpcServer;
  files: Map<string, Buffer>;
  calls: { method: string; params: Record<string, unknown> }[];
  maxInFlight: number;
  config: Record<string, unknown>;
  ota: { state: number; begun?: Record<string, unknown>; data: Buffer; ended: boolean };
  close(): Promise<void>;
}

export function startFake(o: FakeOptions = {}): Fake {
  const server = new RpcServer({ localIds: ["fake_1"] });
  const files = new Map<string, Buffer>();
  const calls: Fake["calls"] = [];
  let inFlight = 0;
  let n = 0;
  const fake = {
    files,
    calls,
    maxInFlight: 0,
    config: { device: { id: "fake_1" }, wifi: { sta: { enable: false, ssid: "", pass: "" }, ap: { enable: true } }, debug: { level: 2 } } as Record<string, unknown>,
    ota: { state: 0, data: Buffer.alloc(0), ended: false } as Fake["ota"],
  } as Fake;
  const guarded = (method: string, fn: (p: Record<string, unknown>) => unknown) =>
    server.addHandler<Record<string, unknown>>(method, async (p) => {
      const params = p ?? {};
      calls.push({ method, params });
      inFlight++;
      fake.maxInFlight = Math.max(fake.maxInFlight, inFlight);
      try {
        const delay = await o.inject?.(method, params, n++);
        await new Promise((r) => setTimeout(r, typeof delay === "number" ? delay : 1));
        return fn(params);
      } finally {
        inFlight--;
      }
    });
  const name = (p: Record<string, unknown>): string => {
    if (typeof p.filename !== "string" || !p.filename) throw new RpcError(400, "filename is required");
    return p.filename;
  };
  server.addHandler("FS.List", () => [...files.keys()]);
  server.addHandler("FS.ListExt", () => [...files].map(([k, v]) => ({ name: k, size: v.length })));
  server.addHandler<Record<string, unknown>>("FS.Remove", (p) => {
    if (!files.delete(name(p))) throw new RpcError(500, "remove failed");
    return null;
  });
  guarded("FS.Put", (p) => {
    const f = name(p);
    const data = Buffer.from(String(p.data ?? ""), "base64");
    const offset = typeof p.offset === "number" ? p.offset : -1;
    let cur = files.get(f);
    if (offset === 0 || (offset < 0 && !p.append)) cur = Buffer.alloc(0);
    else if (offset > 0 && cur === undefined) throw new RpcError(400, `failed to open file "${f}"`);
    cur = cur ?? Buffer.alloc(0);
    const at = offset < 0 ? cur.length : offset;
    const out = Buffer.alloc(Math.max(cur.length, at + data.length));
    cur.copy(out);
    data.copy(out, at);
    files.set(f, out);
    return null;
  });
  guarded("FS.Get", (p) => {
    const f = name(p);
    const cur = files.get(f);
    if (!cur) throw new RpcError(400, `failed to open file "${f}"`);
    const off = Math.min(typeof p.offset === "number" ? p.offset : 0, cur.length);
    const len = typeof p.len === "number" && p.len >= 0 ? p.len : cur.length - off;
    const d = cur.subarray(off, Math.min(cur.length, off + len));
    return { data: d.toString("base64"), left: cur.length - off - d.length };
  });
  if (o.sha256) {
    server.addHandler<Record<string, unknown>>("FS.Sha256", (p) => {
      const f = name(p);
      const cur = files.get(f);
      if (!cur) throw new RpcError(400, `failed to open file "${f}"`);
      const off = typeof p.offset === "number" ? p.offset : 0;
      const len = typeof p.len === "number" && p.len >= 0 ? p.len : cur.length - off;
      const d = cur.subarray(off, off + len);
      return { sha256: createHash("sha256").update(d).digest("hex"), size: cur.length, offset: off, len: d.length };
    });
  }
  server.addHandler("Sys.GetInfo", () => ({ id: "fake_1", app: "fake", fw_version: "1.0", fw_id: "x", mac: "AABBCCDDEEFF", arch: "sim", uptime: 5, ram_size: 1, ram_free: 1, ram_min_free: 1, fs_size: 10, fs_free: 5, ...(o.mgId ? { mg_id: o.mgId } : {}) }));
  server.addHandler<Record<string, unknown>>("Config.Get", (p) => (p?.key ? lookup(fake.config, String(p.key)) : fake.config));
  server.addHandler<Record<string, unknown>>("Config.Set", (p) => {
    merge(fake.config, p.config as Record<string, unknown>);
    return { saved: Boolean(p.save) };
  });
  server.addHandler("OTA.Status", () => ({ state: fake.ota.state }));
  server.addHandler<Record<string, unknown>>("OTA.Begin", (p) => {
    fake.ota.begun = p;
    fake.ota.state = 1;
    fake.ota.data = Buffer.alloc(0);
    return null;
  });
  guarded("OTA.Write", (p) => {
    if (p.offset !== fake.ota.data.length) throw new RpcError(400, `unexpected offset ${String(p.offset)}`);
    fake.ota.data = Buffer.concat([fake.ota.data, Buffer.from(String(p.data), "base64")]);
    return null;
  });
  server.addHandler("OTA.End", () => {
    fake.ota.ended = true;
    fake.ota.state = 3;
    return null;
  });
  const [client, dev] = LoopbackChannel.pair({ maxFrameSize: o.maxFrameSize });
  const stop = server.serve(dev);
  fake.server = server;
  fake.device = new Device("loopback://fake", client, { timeoutMs: o.timeoutMs ?? 2000 });
  fake.close = async () => {
    await fake.device.close();
    stop();
  };
  return fake;
}

function lookup(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of path.split(".")) {
    if (v === null || typeof v !== "object" || !(k in (v as object))) throw new RpcError(404, "invalid config key");
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function merge(into: Record<string, unknown>, diff: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(diff ?? {})) {
    if (v && typeof v === "object" && !Array.isArray(v) && into[k] && typeof into[k] === "object") merge(into[k] as Record<string, unknown>, v as Record<string, unknown>);
    else into[k] = v;
  }
}

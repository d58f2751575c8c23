import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthError, DeviceError } from "../../src/errors.js";
import { addLogSink, type LogEvent } from "../../src/log.js";
import { type DigestAlgorithm, ha1 } from "../../src/rpc/digest.js";
import { type Frame, decodeFrame, encodeFrame } from "../../src/rpc/frame.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import type { ChannelType } from "../../src/rpc/channel.js";
import { LoopbackChannel } from "../../src/transport/loopback.js";
import { type RpcSecurityConfig, type SecurityDeps, createSecurityPreHandler, fsRootFileAccess } from "../../src/device/security.js";

const ACL = JSON.stringify([
  { method: "Sys.GetInfo", acl: "*" },
  { method: "Sys.Reboot", acl: "-*" },
  { method: "Config.Get", ch_type: "UART", acl: "*" },
  { method: "FS.*", acl: "+admin" },
  { method: "*", acl: "+admin,+operator" },
]);

function htdigestText(algorithm: DigestAlgorithm, realm: string, users: Record<string, string>): string {
  return Object.entries(users).map(([u, p]) => `${u}:${realm}:${ha1(algorithm, u, realm, p)}\n`).join("");
}

interface Rig {
  dir: string;
  cfg: RpcSecurityConfig;
  deps: SecurityDeps;
  server: RpcServer;
  reads: string[];
  /** A client over a new loopback pair whose device end has the given channel type. */
  open(creds?: { username: string; password: string }, type?: ChannelType): Link;
  links: Link[];
}

interface Link {
  client: RpcClient;
  clientEnd: LoopbackChannel;
  deviceEnd: LoopbackChannel;
  /** Frame texts the client put on the wire. */
  sent: string[];
  /** Frames the client end received (including replies nobody waits for). */
  received: Frame[];
}

async function makeRig(): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), "remos-security-"));
  const cfg: RpcSecurityConfig = { acl: ACL, acl_file: "", auth_domain: "myproduct", auth_file: "rpc_auth.txt", auth_algo: 0 };
  const fsAccess = fsRootFileAccess(dir);
  const reads: string[] = [];
  const deps: SecurityDeps = {
    rpcConfig: () => cfg,
    readFsFile: async (name) => {
      reads.push(name);
      return fsAccess.readFsFile(name);
    },
    statFsFile: fsAccess.statFsFile,
  };
  const server = new RpcServer({ localIds: ["dev1"] });
  server.addPreHandler(createSecurityPreHandler(deps));
  server.addHandler("Sys.GetInfo", () => ({ id: "dev1" }));
  server.addHandler("Sys.Reboot", () => null);
  server.addHandler("Config.Get", () => ({ ok: true }));
  server.addHandler("FS.List", (_p, ctx) => ({ user: ctx.user }));
  server.addHandler("Who.Am.I", (_p, ctx) => ({ user: ctx.user ?? null }));
  const links: Link[] = [];
  const rig: Rig = {
    dir,
    cfg,
    deps,
    server,
    reads,
    links,
    open(creds, type = "LOOPBACK") {
      const [clientEnd, deviceEnd] = LoopbackChannel.pair();
      deviceEnd.info.type = type;
      server.serve(deviceEnd);
      const sent: string[] = [];
      const received: Frame[] = [];
      const origSend = clientEnd.send.bind(clientEnd);
      clientEnd.send = async (f: Frame) => {
        sent.push(encodeFrame(f));
        return origSend(f);
      };
      clientEnd.onFrame((d) => received.push(d.frame));
      const client = new RpcClient(clientEnd, { src: "mos", timeoutMs: 5000, credentials: creds });
      const link = { client, clientEnd, deviceEnd, sent, received };
      links.push(link);
      return link;
    },
  };
  await writeFile(join(dir, "rpc_auth.txt"), htdigestText("MD5", "myproduct", { admin: "adminpw", operator: "oppw", guest: "guestpw" }));
  return rig;
}

/** Inject raw frame text as if it came off the wire and wait for the device's reply with that id. */
async function replay(link: Link, text: string): Promise<Frame> {
  const id = decodeFrame(text).frame.id;
  const before = link.received.length;
  link.clientEnd.injectToPeer(text);
  const deadline = Date.now() + 5000;
  for (;;) {
    const got = link.received.slice(before).find((f) => f.id === id);
    if (got) return got;
    if (Date.now() > deadline) throw new Error("no reply to the replayed frame within 5 s");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("device security pre-handler over loopback (in-frame digest)", () => {
  let rig: Rig;
  const events: LogEvent[] = [];
  let removeSink: () => void;

  before(async () => {
    rig = await makeRig();
    removeSink = addLogSink((e) => {
      if (e.area === "auth") events.push(e);
    });
  });
  beforeEach(() => {
    rig.cfg.acl = ACL;
    rig.cfg.acl_file = "";
    rig.cfg.auth_domain = "myproduct";
    rig.cfg.auth_file = "rpc_auth.txt";
    rig.cfg.auth_algo = 0;
  });
  after(async () => {
    removeSink();
    for (const l of rig.links) await l.client.close();
    rig.server.stopAll();
    await rm(rig.dir, { recursive: true, force: true });
  });

  it("open entries need no credentials; -* and unmatched entries are 403", async () => {
    const { client } = rig.open();
    assert.deepEqual(await client.call("Sys.GetInfo"), { id: "dev1" });
    await assert.rejects(client.call("Sys.Reboot"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 403 && e.rpcMessage === "unauthorized");
  });

  it("a restricted method without credentials gets the 401 challenge and AuthError", async () => {
    const link = rig.open();
    await assert.rejects(link.client.call("FS.List"), AuthError);
    const reply = link.received.find((f) => f.error?.code === 401);
    assert.ok(reply?.error?.message);
    const challenge = JSON.parse(reply.error.message) as Record<string, unknown>;
    assert.deepEqual(Object.keys(challenge), ["auth_type", "nonce", "nc", "realm", "algorithm"]);
    assert.equal(challenge.auth_type, "digest");
    assert.equal(challenge.realm, "myproduct");
    assert.equal(challenge.algorithm, "MD5");
    assert.equal(challenge.nc, 1);
    assert.ok(Math.abs((challenge.nonce as number) - Date.now() / 1000) < 5);
  });

  for (const [algo, name] of [[0, "MD5"], [1, "SHA-256"]] as const) {
    it(`${name}: RpcClient answers the challenge and the handler sees the user`, async () => {
      rig.cfg.auth_algo = algo;
      await writeFile(join(rig.dir, "rpc_auth.txt"), htdigestText(name, "myproduct", { admin: "adminpw", operator: "oppw", guest: "guestpw" }));
      const { client, sent } = rig.open({ username: "admin", password: "adminpw" });
      assert.deepEqual(await client.call("FS.List"), { user: "admin" });
      const withAuth = sent.map((t) => JSON.parse(t) as Frame).find((f) => f.auth);
      assert.equal(withAuth?.auth?.algorithm, name);
      await rm(join(rig.dir, "rpc_auth.txt"));
      await writeFile(join(rig.dir, "rpc_auth.txt"), htdigestText("MD5", "myproduct", { admin: "adminpw", operator: "oppw", guest: "guestpw" }));
    });
  }

  it("a wrong password is an AuthError, and the log names who and why but no secret", async () => {
    events.length = 0;
    const { client, sent } = rig.open({ username: "admin", password: "Tr0ub4dor-x" });
    await assert.rejects(client.call("FS.List"), AuthError);
    const refusal = events.find((e) => e.message === "refused");
    assert.deepEqual(
      { user: refusal?.fields?.user, method: refusal?.fields?.method, why: refusal?.fields?.why },
      { user: "admin", method: "FS.List", why: "in-frame auth: unknown user or wrong password" },
    );
    const response = sent.map((t) => JSON.parse(t) as Frame).find((f) => f.auth)?.auth?.response;
    const logged = JSON.stringify(events);
    assert.ok(response && !logged.includes(response), "the digest response is not logged");
    assert.ok(!logged.includes("Tr0ub4dor-x") && !logged.includes(ha1("MD5", "admin", "myproduct", "adminpw")));
  });

  it("an unknown user gets exactly what a wrong password gets", async () => {
    const a = rig.open({ username: "nobody", password: "x" });
    const b = rig.open({ username: "admin", password: "x" });
    const ea = await a.client.call("FS.List").catch((e: unknown) => e);
    const eb = await b.client.call("FS.List").catch((e: unknown) => e);
    assert.ok(ea instanceof AuthError && eb instanceof AuthError);
    assert.equal(ea.message, eb.message);
    const last = (l: Link) => l.received.filter((f) => f.error).map((f) => f.error?.code);
    assert.deepEqual(last(a), [401, 401]);
    assert.deepEqual(last(b), [401, 401]);
  });

  it("a user not in the entry's list gets 403 unauthorized", async () => {
    const { client } = rig.open({ username: "guest", password: "guestpw" });
    await assert.rejects(client.call("FS.List"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 403 && e.rpcMessage === "unauthorized");
    const op = rig.open({ username: "operator", password: "oppw" });
    await assert.rejects(op.client.call("FS.List"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 403);
    assert.deepEqual(await op.client.call("Who.Am.I"), { user: "operator" });
  });

  it("malformed auth, another realm or another algorithm is 400 bad request", async () => {
    const { client } = rig.open();
    const nonce = Math.floor(Date.now() / 1000);
    const base = { realm: "myproduct", username: "admin", nonce, cnonce: 1, response: "00" };
    const frames: Array<Record<string, unknown>> = [
      { ...base, response: undefined },
      { ...base, realm: "other" },
      { ...base, algorithm: "SHA-256" },
      { ...base, algorithm: "bogus" },
    ];
    for (const auth of frames) {
      const link = rig.open();
      const reply = await replay(link, JSON.stringify({ src: "mos", id: 4242, method: "FS.List", auth }));
      assert.deepEqual(reply.error, { code: 400, message: "bad request" }, JSON.stringify(auth));
    }
    // bad auth on an open method is never looked at
    const open = rig.open();
    const reply = await replay(open, JSON.stringify({ id: 1, method: "Sys.GetInfo", auth: { bogus: true } }));
    assert.deepEqual(reply.result, { id: "dev1" });
    await client.close();
  });

  it("a stale nonce gets a new 401 challenge", async () => {
    const link = rig.open();
    const old = Math.floor(Date.now() / 1000) - 3700;
    const auth = { realm: "myproduct", username: "admin", nonce: old, cnonce: 7, response: "0".repeat(32), algorithm: "MD5" };
    const reply = await replay(link, JSON.stringify({ src: "mos", id: 77, method: "FS.List", auth }));
    assert.equal(reply.error?.code, 401);
    assert.ok(JSON.parse(reply.error.message ?? "").nonce > old);
  });

  it("a pre-emptive auth with a self-chosen recent nonce works (DOCS), each request with its own cnonce", async () => {
    const link = rig.open();
    const nonce = Math.floor(Date.now() / 1000);
    for (const cnonce of [1, 2]) {
      const auth = preemptive("admin", "adminpw", nonce, cnonce);
      const reply = await replay(link, JSON.stringify({ src: "mos", id: 500 + cnonce, method: "FS.List", auth }));
      assert.deepEqual(reply.result, { user: "admin" });
    }
  });

  it("a captured authenticated frame replayed later fails, on the same and on another channel", async () => {
    const victim = rig.open({ username: "admin", password: "adminpw" });
    assert.deepEqual(await victim.client.call("FS.List"), { user: "admin" });
    const captured = victim.sent.find((t) => (JSON.parse(t) as Frame).auth);
    assert.ok(captured);
    const same = await replay(victim, captured);
    assert.equal(same.error?.code, 401, "replay on the same channel");
    const attacker = rig.open(undefined, "MQTT");
    const other = await replay(attacker, captured);
    assert.equal(other.error?.code, 401, "replay on another channel");
    // the same credential attached to another request is refused too
    const tampered = JSON.stringify({ ...(JSON.parse(captured) as Frame), id: 999, method: "Who.Am.I" });
    assert.equal((await replay(attacker, tampered)).error?.code, 401);
    // and the honest client keeps working
    assert.deepEqual(await victim.client.call("FS.List"), { user: "admin" });
  });

  it("a frame captured before a device restart cannot be replayed after it", async () => {
    let clock = Date.now();
    const fresh = (): RpcServer => {
      const deps: SecurityDeps = { ...rig.deps, now: () => clock };
      const s = new RpcServer();
      s.addPreHandler(createSecurityPreHandler(deps));
      s.addHandler("FS.List", (_p, ctx) => ({ user: ctx.user }));
      return s;
    };
    const before = fresh();
    const [c1, d1] = LoopbackChannel.pair();
    before.serve(d1);
    const sent: string[] = [];
    const origSend = c1.send.bind(c1);
    c1.send = async (f: Frame) => {
      sent.push(encodeFrame(f));
      return origSend(f);
    };
    const client = new RpcClient(c1, { credentials: { username: "admin", password: "adminpw" }, timeoutMs: 5000 });
    assert.deepEqual(await client.call("FS.List"), { user: "admin" });
    const captured = sent.find((t) => (JSON.parse(t) as Frame).auth);
    assert.ok(captured);
    await client.close();
    clock += 60_000; // the device restarts a minute later: its replay memory is empty
    const afterRestart = fresh();
    const [c2, d2] = LoopbackChannel.pair();
    afterRestart.serve(d2);
    const received: Frame[] = [];
    c2.onFrame((d) => received.push(d.frame));
    const reply = await replay({ clientEnd: c2, received } as unknown as Link, captured);
    assert.equal(reply.error?.code, 401);
    await c2.close();
  });

  it("ch_type rules apply by the channel's type", async () => {
    const uart = rig.open(undefined, "UART");
    assert.deepEqual(await uart.client.call("Config.Get"), { ok: true });
    const mqtt = rig.open(undefined, "MQTT");
    await assert.rejects(mqtt.client.call("Config.Get"), AuthError);
  });

  it("a user set by the channel (HTTP/WS digest) is used without in-frame auth", async () => {
    const link = rig.open(undefined, "WS_in");
    link.deviceEnd.info.user = "admin";
    assert.deepEqual(await link.client.call("FS.List"), { user: "admin" });
    link.deviceEnd.info.user = "guest";
    await assert.rejects(link.client.call("FS.List"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 403);
  });

  it("no ACL: everything allowed without auth, even with auth_file set", async () => {
    rig.cfg.acl = "";
    const { client } = rig.open();
    assert.deepEqual(await client.call("Sys.Reboot"), null);
    assert.deepEqual(await client.call("Who.Am.I"), { user: null });
  });

  it("auth not configured: a restricted method stays 401 (credentials are not checked)", async () => {
    rig.cfg.auth_file = "";
    const { client } = rig.open({ username: "admin", password: "adminpw" });
    await assert.rejects(client.call("FS.List"), AuthError);
  });

  it("rpc.acl and rpc.acl_file both set, or a malformed ACL: every request fails 500", async () => {
    const { client } = rig.open();
    rig.cfg.acl_file = "acl.json";
    await assert.rejects(client.call("Sys.GetInfo"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 500 && /both rpc.acl and rpc.acl_file/.test(e.rpcMessage));
    rig.cfg.acl_file = "";
    rig.cfg.acl = "[{";
    await assert.rejects(client.call("Sys.GetInfo"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 500 && /invalid RPC ACL/.test(e.rpcMessage));
    rig.cfg.acl = "@missing.json";
    await assert.rejects(client.call("Sys.GetInfo"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 500 && e.rpcMessage === "failed to read ACL file");
    rig.cfg.acl = "@../outside.json";
    await assert.rejects(client.call("Sys.GetInfo"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 500 && e.rpcMessage === "failed to read ACL file");
  });

  it("an unreadable password file is 500", async () => {
    rig.cfg.auth_file = "nope.txt";
    const { client } = rig.open({ username: "admin", password: "adminpw" });
    await assert.rejects(client.call("FS.List"), (e: unknown) => e instanceof DeviceError && e.rpcCode === 500 && e.rpcMessage === "failed to open password file");
  });

  it("ACL and htdigest files are cached and re-read when they change", async () => {
    await writeFile(join(rig.dir, "acl.json"), JSON.stringify([{ method: "*", acl: "+admin" }]));
    rig.cfg.acl = "@acl.json";
    await writeFile(join(rig.dir, "rpc_auth.txt"), htdigestText("MD5", "myproduct", { admin: "adminpw" }) + "# changed\n");
    const { client } = rig.open({ username: "admin", password: "adminpw" });
    rig.reads.length = 0;
    for (let i = 0; i < 3; i++) assert.deepEqual(await client.call("Who.Am.I"), { user: "admin" });
    assert.deepEqual([...new Set(rig.reads)].sort(), ["acl.json", "rpc_auth.txt"]);
    assert.equal(rig.reads.length, 2, "each file read once for three requests");

    // a new password (written atomically: temp + rename) takes effect on the next request
    const tmp = join(rig.dir, "rpc_auth.txt.tmp");
    await writeFile(tmp, htdigestText("MD5", "myproduct", { admin: "newpw" }));
    await rename(tmp, join(rig.dir, "rpc_auth.txt"));
    await assert.rejects(client.call("Who.Am.I"), AuthError);
    const fresh = rig.open({ username: "admin", password: "newpw" });
    assert.deepEqual(await fresh.client.call("Who.Am.I"), { user: "admin" });

    // a changed ACL file too
    await writeFile(join(rig.dir, "acl.json"), JSON.stringify([{ method: "*", acl: "*" }, { method: "x", acl: "-*" }]));
    assert.deepEqual(await rig.open().client.call("Who.Am.I"), { user: null });
  });
});

function preemptive(username: string, password: string, nonce: number, cnonce: number): Record<string, unknown> {
  // what DOCS userguide/rpc.md does: compute the digest against a self-chosen recent nonce
  const h1 = ha1("MD5", username, "myproduct", password);
  const ha2 = createHashHex("dummy_method:dummy_uri");
  const response = createHashHex(`${h1}:${nonce}:1:${cnonce}:auth:${ha2}`);
  return { realm: "myproduct", username, nonce, cnonce, response };
}

function createHashHex(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RpcClient } from "../../src/rpc/client.js";
import { type TestDevice, b64, deviceError, deviceWithOutsideDir, startTestDevice } from "./helpers.js";


describe("device FS service", () => {
  let t: TestDevice;
  let outside: string;
  deviceWithOutsideDir((d, o) => {
    t = d;
    outside = o;
  });

  it("FS.Put with offset 0 creates, offset > 0 writes in place, append appends", async () => {
    const c = t.client;
    assert.equal(await c.call("FS.Put", { filename: "a.txt", offset: 0, data: b64("hello world") }), null);
    await c.call("FS.Put", { filename: "a.txt", offset: 6, append: true, data: b64("WORLD") });
    assert.equal(await readFile(join(t.agent.fsRoot, "a.txt"), "utf8"), "hello WORLD");
    await c.call("FS.Put", { filename: "a.txt", append: true, data: b64("!") }); // offset -1 + append → "ab"
    assert.equal(await readFile(join(t.agent.fsRoot, "a.txt"), "utf8"), "hello WORLD!");
    await c.call("FS.Put", { filename: "a.txt", data: b64("new") }); // offset -1, no append → "wb"
    assert.equal(await readFile(join(t.agent.fsRoot, "a.txt"), "utf8"), "new");
    await c.call("FS.Put", { filename: "empty.txt", offset: 0 }); // no data: created empty
    assert.equal((await readFile(join(t.agent.fsRoot, "empty.txt"))).length, 0);
  });

  it("FS.Put errors: filename required, offset > 0 on a missing file, bad base64", async () => {
    assert.deepEqual(await deviceError(t.client.call("FS.Put", { data: b64("x") })), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Put", { filename: 5, data: b64("x") })), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Put", { filename: "nope.bin", offset: 3, data: b64("x") })), {
      code: 400,
      message: 'failed to open file "nope.bin"',
    });
    assert.deepEqual(await deviceError(t.client.call("FS.Put", { filename: "nodir/x.bin", offset: 0, data: b64("x") })), {
      code: 400,
      message: 'failed to open file "nodir/x.bin"',
    });
    assert.deepEqual(await deviceError(t.client.call("FS.Put", { filename: "x.bin", data: "%%%" })), { code: 400, message: "invalid data" });
  });

  it("FS.Get returns data and left always, clamps offset and len", async () => {
    await t.client.call("FS.Put", { filename: "g.txt", offset: 0, data: b64("0123456789") });
    assert.deepEqual(await t.client.call("FS.Get", { filename: "g.txt" }), { data: b64("0123456789"), left: 0 });
    assert.deepEqual(await t.client.call("FS.Get", { filename: "g.txt", offset: 2, len: 3 }), { data: b64("234"), left: 5 });
    assert.deepEqual(await t.client.call("FS.Get", { filename: "g.txt", offset: 8, len: 100 }), { data: b64("89"), left: 0 });
    assert.deepEqual(await t.client.call("FS.Get", { filename: "g.txt", offset: 50 }), { data: "", left: 0 });
    assert.deepEqual(await t.client.call("FS.Get", { filename: "empty.txt" }), { data: "", left: 0 });
  });

  it("FS.Get errors: filename required, illegal offset, missing file, a directory", async () => {
    assert.deepEqual(await deviceError(t.client.call("FS.Get", {})), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Get", { filename: "g.txt", offset: -1 })), { code: 400, message: "illegal offset" });
    assert.deepEqual(await deviceError(t.client.call("FS.Get", { filename: "nope.txt" })), { code: 400, message: 'failed to open file "nope.txt"' });
    await t.client.call("FS.Mkdir", { path: "d1" });
    assert.deepEqual(await deviceError(t.client.call("FS.Get", { filename: "d1" })), { code: 400, message: 'failed to open file "d1"' });
  });

  it("FS.List / FS.ListExt list the root by default and sub-directories; a missing dir is []", async () => {
    await t.client.call("FS.Mkdir", { path: "sub/deeper" });
    await t.client.call("FS.Put", { filename: "sub/f.bin", offset: 0, data: b64("abc") });
    const names = await t.client.call<string[]>("FS.List");
    for (const n of ["a.txt", "conf0.json", "g.txt", "sub"]) assert.ok(names.includes(n), n);
    assert.ok(!names.includes(".") && !names.includes(".."));
    assert.deepEqual(await t.client.call("FS.List", { path: "/" }), names);
    assert.deepEqual(await t.client.call("FS.List", { path: "sub" }), ["deeper", "f.bin"]);
    const ext = await t.client.call<{ name: string; size: number }[]>("FS.ListExt", { path: "sub" });
    assert.deepEqual(ext.find((e) => e.name === "f.bin"), { name: "f.bin", size: 3 });
    assert.deepEqual(await t.client.call("FS.List", { path: "missing" }), []);
  });

  it("FS.Remove and FS.Rename with their errors", async () => {
    await t.client.call("FS.Put", { filename: "r.txt", offset: 0, data: b64("r") });
    assert.equal(await t.client.call("FS.Rename", { src: "r.txt", dst: "r2.txt" }), null);
    assert.equal(await readFile(join(t.agent.fsRoot, "r2.txt"), "utf8"), "r");
    assert.deepEqual(await deviceError(t.client.call("FS.Rename", { src: "r2.txt" })), { code: 400, message: "src and dst are required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Rename", { src: "gone", dst: "x" })), { code: 500, message: "rename failed" });
    assert.equal(await t.client.call("FS.Remove", { filename: "r2.txt" }), null);
    assert.deepEqual(await deviceError(t.client.call("FS.Remove", { filename: "r2.txt" })), { code: 500, message: "remove failed" });
    assert.deepEqual(await deviceError(t.client.call("FS.Remove", {})), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Mkdir", {})), { code: 400, message: "path is required" });
  });

  it("FS.Mkfs / Mount / Umount: argument checks, then 501", async () => {
    assert.deepEqual(await deviceError(t.client.call("FS.Mkfs", {})), { code: 400, message: "fs_type is required" });
    assert.equal((await deviceError(t.client.call("FS.Mkfs", { dev_name: "d", fs_type: "LFS" }))).code, 501);
    assert.deepEqual(await deviceError(t.client.call("FS.Mount", { path: "/x" })), { code: 400, message: "path and fs_type is required" });
    assert.equal((await deviceError(t.client.call("FS.Mount", { path: "/x", dev_name: "d", fs_type: "LFS" }))).code, 501);
    assert.deepEqual(await deviceError(t.client.call("FS.Umount", {})), { code: 400, message: "path is required" });
    assert.equal((await deviceError(t.client.call("FS.Umount", { path: "/x" }))).code, 501);
  });

  it("refuses '..', absolute paths and symlinks leading out of the root with 400", async () => {
    await symlink(outside, join(t.agent.fsRoot, "escape"));
    await symlink(join(outside, "secret.txt"), join(t.agent.fsRoot, "secret-link"));
    await symlink(join(outside, "not-there"), join(t.agent.fsRoot, "dangling"));
    await mkdir(join(t.agent.fsRoot, "inner"));
    await symlink(join(t.agent.fsRoot, "g.txt"), join(t.agent.fsRoot, "inner", "ok-link"));
    const bad: [string, Record<string, unknown>][] = [
      ["FS.Get", { filename: "../../../etc/passwd" }],
      ["FS.Get", { filename: "sub/../g.txt" }],
      ["FS.Get", { filename: "/etc/passwd" }],
      ["FS.Get", { filename: "\\etc\\passwd" }],
      ["FS.Get", { filename: "escape/secret.txt" }],
      ["FS.Get", { filename: "secret-link" }],
      ["FS.Put", { filename: "escape/new.txt", offset: 0, data: b64("x") }],
      ["FS.Put", { filename: "secret-link", offset: 0, data: b64("x") }],
      ["FS.Put", { filename: "dangling", offset: 0, data: b64("x") }],
      ["FS.Put", { filename: "../evil.txt", offset: 0, data: b64("x") }],
      ["FS.List", { path: "escape" }],
      ["FS.List", { path: ".." }],
      ["FS.ListExt", { path: "/etc" }],
      ["FS.Remove", { filename: "escape/secret.txt" }],
      ["FS.Rename", { src: "g.txt", dst: "../g.txt" }],
      ["FS.Rename", { src: "escape/secret.txt", dst: "stolen.txt" }],
      ["FS.Mkdir", { path: "escape/newdir" }],
      ["FS.Get", { filename: "a\u0000b" }],
    ];
    for (const [method, params] of bad) {
      const e = await deviceError(t.client.call(method, params));
      assert.equal(e.code, 400, `${method} ${JSON.stringify(params)} → ${e.code} ${e.message}`);
      assert.match(e.message, /^invalid path /);
    }
    assert.equal(await readFile(join(outside, "secret.txt"), "utf8"), "secret");
    // a symlink that stays inside the root is fine
    assert.deepEqual(await t.client.call("FS.Get", { filename: "inner/ok-link", len: 2 }), { data: b64("01"), left: 8 });
  });

  it("FS.Sha256 hashes a whole file or a clamped range, streamed (a 1 MB file read in pieces)", async () => {
    const data = randomBytes(1024 * 1024 + 7);
    await writeFile(join(t.agent.fsRoot, "big.bin"), data);
    const h = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
    assert.deepEqual(await t.client.call("FS.Sha256", { filename: "big.bin" }), { sha256: h(data), size: data.length, offset: 0, len: data.length });
    assert.deepEqual(await t.client.call("FS.Sha256", { filename: "big.bin", offset: 1000, len: 300_000 }), {
      sha256: h(data.subarray(1000, 301_000)),
      size: data.length,
      offset: 1000,
      len: 300_000,
    });
    // len past the end is clamped; len -1 means to the end; an offset past the end hashes nothing
    assert.deepEqual(await t.client.call("FS.Sha256", { filename: "big.bin", offset: data.length - 5, len: 100 }), {
      sha256: h(data.subarray(data.length - 5)),
      size: data.length,
      offset: data.length - 5,
      len: 5,
    });
    assert.deepEqual(await t.client.call("FS.Sha256", { filename: "big.bin", offset: 10, len: -1 }), {
      sha256: h(data.subarray(10)),
      size: data.length,
      offset: 10,
      len: data.length - 10,
    });
    assert.deepEqual(await t.client.call("FS.Sha256", { filename: "big.bin", offset: data.length + 10 }), {
      sha256: h(Buffer.alloc(0)),
      size: data.length,
      offset: data.length,
      len: 0,
    });
    assert.deepEqual(await t.client.call("FS.Sha256", { filename: "empty.txt" }), { sha256: h(Buffer.alloc(0)), size: 0, offset: 0, len: 0 });
  });

  it("FS.Sha256 errors as FS.Get: filename required, illegal offset, missing file, a directory, traversal", async () => {
    assert.deepEqual(await deviceError(t.client.call("FS.Sha256", {})), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Sha256", { filename: 1 })), { code: 400, message: "filename is required" });
    assert.deepEqual(await deviceError(t.client.call("FS.Sha256", { filename: "g.txt", offset: -1 })), { code: 400, message: "illegal offset" });
    assert.deepEqual(await deviceError(t.client.call("FS.Sha256", { filename: "none.bin" })), { code: 400, message: 'failed to open file "none.bin"' });
    await mkdir(join(t.agent.fsRoot, "adir"), { recursive: true });
    assert.deepEqual(await deviceError(t.client.call("FS.Sha256", { filename: "adir" })), { code: 400, message: 'failed to open file "adir"' });
    assert.match((await deviceError(t.client.call("FS.Sha256", { filename: "../device.json" }))).message, /^invalid path /);
  });

  it("RPC.Describe reports the FS args formats (FS.Sha256 with its schemas)", async () => {
    const d = await t.client.call<{ args_fmt: string }>("RPC.Describe", { name: "FS.Get" });
    assert.equal(d.args_fmt, "{filename: %Q, offset: %ld, len: %ld}");
    const s = await t.client.call<{ args_fmt: string; args_schema?: unknown; result_schema?: { required?: string[] } }>("RPC.Describe", { name: "FS.Sha256" });
    assert.equal(s.args_fmt, "{filename: %Q, offset: %ld, len: %ld}");
    assert.ok(s.args_schema);
    assert.deepEqual(s.result_schema?.required, ["sha256", "size", "offset", "len"]);
    assert.ok((await t.client.call<string[]>("RPC.List")).includes("FS.Sha256"));
  });
});

describe("device FS service over HTTP", () => {
  let t: TestDevice;
  let http: RpcClient;
  before(async () => {
    t = await startTestDevice({ httpListen: "127.0.0.1:0" });
    const { connect } = await import("../../src/transport/http.js");
    const addr = t.agent.httpAddress;
    assert.ok(addr);
    http = new RpcClient(await connect(new URL(`http://127.0.0.1:${addr.port}/rpc`), { timeoutMs: 5000 }), { timeoutMs: 5000 });
  });
  after(async () => {
    await http.close();
    await t.close();
  });

  it("puts, gets, lists and refuses traversal over /rpc", async () => {
    await http.call("FS.Put", { filename: "h.txt", offset: 0, data: b64("over http") });
    assert.deepEqual(await http.call("FS.Get", { filename: "h.txt", offset: 5 }), { data: b64("http"), left: 0 });
    assert.ok((await http.call<string[]>("FS.List")).includes("h.txt"));
    assert.equal((await deviceError(http.call("FS.Get", { filename: "../device.json" }))).code, 400);
    assert.equal((await deviceError(http.call("FS.Get", { filename: "/etc/hostname" }))).code, 400);
  });
});

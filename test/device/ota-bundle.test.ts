import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { buildZip, extraRecord, extractEntry, isSafeEntryName, parseExtra, readZip, ZipError } from "../../src/device/ota/zip.js";
import { SIG_EXTRA_ID } from "../../src/device/ota/bundle.js";
import { verifyBundle } from "../../src/device/ota/verify.js";
import { manifestProblems } from "../../src/device/ota/manifest.js";
import { RpcError } from "../../src/errors.js";
import { makeBundle, makeSigningKey } from "../helpers/bundle.js";
import { runMos } from "../helpers/mos.js";

const tmp: string[] = [];
after(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

describe("zip reader/writer", () => {
  it("round-trips stored and deflated entries with extra fields", () => {
    const big = Buffer.alloc(100_000, "abc");
    const extra = extraRecord(SIG_EXTRA_ID, Buffer.from('{"sig0":"x"}'));
    const zip = buildZip([
      { name: "a.txt", data: Buffer.from("hello"), extra },
      { name: "dir/b.bin", data: big, method: 0 },
      { name: "empty", data: new Uint8Array(0) },
    ]);
    const entries = readZip(zip);
    assert.deepEqual(entries.map((e) => e.name), ["a.txt", "dir/b.bin", "empty"]);
    assert.equal(Buffer.from(extractEntry(zip, entries[0])).toString(), "hello");
    assert.ok(Buffer.from(extractEntry(zip, entries[1])).equals(big));
    assert.equal(extractEntry(zip, entries[2]).length, 0);
    assert.equal(Buffer.from(parseExtra(entries[0].extra).get(SIG_EXTRA_ID) ?? []).toString(), '{"sig0":"x"}');
    assert.equal(Buffer.from(parseExtra(entries[0].localExtra).get(SIG_EXTRA_ID) ?? []).toString(), '{"sig0":"x"}');
  });

  it("detects corruption (CRC), truncation and bad names", () => {
    const zip = Buffer.from(buildZip([{ name: "a.txt", data: Buffer.from("hello world"), method: 0 }]));
    const bad = Buffer.from(zip);
    bad[30 + 5 + 2] ^= 1; // a data byte
    assert.throws(() => extractEntry(bad, readZip(bad)[0]), /CRC-32/);
    for (let n = 0; n < zip.length; n += 7) assert.throws(() => readZip(zip.subarray(0, n)), ZipError);
    for (const name of ["../x", "/etc/passwd", "a/../../b", "a\\b", "C:/x", "a//b", ""]) assert.equal(isSafeEntryName(name), false, name);
    assert.equal(isSafeEntryName("lib/a.js"), true);
    assert.throws(() => buildZip([{ name: "../evil", data: new Uint8Array(1) }]), /unsafe/);
  });

  it("refuses an entry whose deflate data inflates beyond its declared size (zip bomb)", () => {
    const zip = Buffer.from(buildZip([{ name: "a", data: Buffer.alloc(10) }]));
    const bomb = deflateRawSync(Buffer.alloc(1_000_000));
    // splice a bomb into a handmade archive with declared size 10
    const entries = readZip(zip);
    assert.equal(entries[0].size, 10);
    const fake = { ...entries[0], compressedSize: bomb.length, dataOffset: 0 };
    assert.throws(() => extractEntry(bomb, fake), ZipError);
  });
});

describe("bundle build and verify", () => {
  it("builds a manifest per spec §7 and verifies its signature against the Mongoose key form", async () => {
    const k = makeSigningKey();
    const b = makeBundle({ "init.js": "print(1)" }, { signKeys: [k.privatePem], description: "demo app" });
    assert.deepEqual(manifestProblems(b.manifest, true), []);
    assert.equal(b.manifest.platform, "remos");
    assert.match(b.manifest.build_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const fs = b.manifest.parts.fs;
    assert.equal(fs.type, "fs");
    assert.equal(fs.src, "fs.zip");
    assert.match(String(fs.cs_sha1), /^[0-9a-f]{40}$/);
    const v = await verifyBundle(b.zip, { keys: [k.publicB64], sigReqMask: 1, fsRoot: "/nonexistent" });
    assert.equal(v.sigResult, 1);
    assert.equal(Buffer.from(v.files.get("init.js") ?? []).toString(), "print(1)");
    // unsigned bundles pass with the default mask -1, are refused when a signature is required
    const unsigned = makeBundle({ "init.js": "x" });
    assert.equal((await verifyBundle(unsigned.zip, { keys: [k.publicB64], sigReqMask: -1, fsRoot: "/" })).sigResult, 0);
    await assert.rejects(verifyBundle(unsigned.zip, { keys: [k.publicB64], sigReqMask: 1, fsRoot: "/" }), (e: unknown) => e instanceof RpcError && e.rpcCode === 403);
  });

  it("refuses an fs part with a path-traversal name", async () => {
    // hand-build an fs.zip with an unsafe name by patching the bytes after building a safe one
    const fsZip = Buffer.from(buildZip([{ name: "xx/evil", data: Buffer.from("x") }]));
    fsZip.write("..", fsZip.indexOf("xx/evil"), "latin1");
    fsZip.write("..", fsZip.lastIndexOf("xx/evil"), "latin1");
    const b = makeBundle({ a: "b" });
    const { repackBundle } = await import("../helpers/bundle.js");
    const { sha256Hex, sha1Hex } = await import("../../src/device/ota/bundle.js");
    const zip = repackBundle(b.zip, (m, parts) => {
      parts.set("fs.zip", fsZip);
      const p = (m.parts as Record<string, Record<string, unknown>>).fs;
      Object.assign(p, { size: fsZip.length, cs_sha256: sha256Hex(fsZip), cs_sha1: sha1Hex(fsZip) });
    });
    await assert.rejects(verifyBundle(zip, { keys: [], sigReqMask: -1, fsRoot: "/" }), /unsafe entry name/);
  });
});

describe("mos create-fw-bundle", () => {
  it("builds a signed bundle from a directory that the device accepts", async () => {
    const d = await mkdtemp(join(tmpdir(), "remos-cfb-"));
    tmp.push(d);
    await mkdir(join(d, "app", "lib"), { recursive: true });
    await writeFile(join(d, "app", "init.js"), "load('lib/x.js');");
    await writeFile(join(d, "app", "lib", "x.js"), "1");
    const k = makeSigningKey();
    await writeFile(join(d, "k.pem"), k.privatePem);
    const out = join(d, "fw.zip");
    const r = await runMos(["create-fw-bundle", "--dir", join(d, "app"), "--name", "demo", "--version", "1.5", "--sign-key", "", "--sign-key", join(d, "k.pem"), "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /demo 1\.5 .*signed: sig1/);
    const v = await verifyBundle(await readFile(out), { keys: [undefined, k.publicPem], sigReqMask: 2, fsRoot: "/" });
    assert.equal(v.manifest.version, "1.5");
    assert.deepEqual([...v.files.keys()].sort(), ["init.js", "lib/x.js"]);

    const missing = await runMos(["create-fw-bundle", "--dir", join(d, "nope"), "--name", "demo", "--version", "1", "-o", join(d, "x.zip")]);
    assert.equal(missing.code, 7, missing.stderr);
    const badKey = await runMos(["create-fw-bundle", "--dir", join(d, "app"), "--name", "demo", "--version", "1", "--sign-key", join(d, "app", "init.js"), "-o", join(d, "x.zip")]);
    assert.equal(badKey.code, 2);
    assert.match(badKey.stderr, /not a PEM private key/);
  });
});

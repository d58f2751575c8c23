/**
 * The CLI's compile cache directory is one the user owns and only the user can write to; anything else
 * there (a world-writable directory, a file, a link) is refused. On Node without
 * `module.enableCompileCache` (Node 20) turning it on is a no-op.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { enableCompileCache, ownedCacheDir } from "../../src/cli/compile-cache.js";

const uid = typeof process.getuid === "function" ? process.getuid() : undefined;

describe("mos compile cache", () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(join(tmpdir(), "remos-cc-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("is off or on as Node allows, and never throws", () => {
    const hasApi = typeof (process.getBuiltinModule("node:module") as { enableCompileCache?: unknown }).enableCompileCache === "function";
    const state = enableCompileCache();
    if (!hasApi) assert.equal(state, "unsupported");
    else assert.ok(["enabled", "off", "refused"].includes(state), state);
  });

  it("creates its directory 0700 and uses it again", { skip: uid === undefined ? "no uids on this platform" : false }, () => {
    const dir = ownedCacheDir(fs, tmp, uid as number);
    assert.equal(dir, join(tmp, `remos-compile-cache-${uid}`));
    assert.equal(fs.statSync(dir as string).mode & 0o777, 0o700);
    assert.equal(ownedCacheDir(fs, tmp + "/", uid as number), dir);
  });

  it("refuses a directory others can write to, a file, a link, or another user's directory", { skip: uid === undefined ? "no uids on this platform" : false }, () => {
    const u = uid as number;
    const open = join(tmp, "open");
    fs.mkdirSync(open);
    fs.mkdirSync(join(open, `remos-compile-cache-${u}`));
    fs.chmodSync(join(open, `remos-compile-cache-${u}`), 0o777);
    assert.equal(ownedCacheDir(fs, open, u), undefined);

    const file = join(tmp, "file");
    fs.mkdirSync(file);
    fs.writeFileSync(join(file, `remos-compile-cache-${u}`), "");
    assert.equal(ownedCacheDir(fs, file, u), undefined);

    const link = join(tmp, "link");
    fs.mkdirSync(link);
    fs.mkdirSync(join(tmp, "target"), { mode: 0o700 });
    fs.symlinkSync(join(tmp, "target"), join(link, `remos-compile-cache-${u}`));
    assert.equal(ownedCacheDir(fs, link, u), undefined);

    // a directory made by this user but checked as someone else's
    const other = join(tmp, "other");
    fs.mkdirSync(other);
    assert.equal(ownedCacheDir(fs, other, u + 1), undefined);
  });
});

/**
 * `npm run build`: tsup, then removes what earlier builds left in dist/ and this one did not write (chunk
 * names carry content hashes, so every change leaves old chunks behind, and `files` publishes all of dist/).
 * dist/ is not emptied first (tsup's `clean`): a test or bench process may still be running from it while
 * the build writes the new files; only files older than this build are removed, once it has succeeded.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const DIST = "dist";
// mtimes have the file system's granularity: start a little before now so no fresh file looks older
const started = Date.now() - 1000;
const tsup = require.resolve("tsup/dist/cli-default.js");
const run = spawnSync(process.execPath, [tsup, ...process.argv.slice(2)], { stdio: "inherit" });
if (run.status !== 0) process.exit(run.status ?? 1);

let removed = 0;
function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) prune(path);
    else if (statSync(path).mtimeMs < started) {
      rmSync(path);
      removed++;
    }
  }
}
prune(DIST);
if (removed > 0) console.log(`build: removed ${removed} files earlier builds left in ${DIST}/`);

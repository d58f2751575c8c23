#!/usr/bin/env node
// Runs the test suite with Node's own test runner (TypeScript through tsx) and ends with the plain
// closing line `N passed, N failed, N skipped`. Arguments: folders or files to run (default: test/).
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { run } from "node:test";
import { spec } from "node:test/reporters";

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ["test"];
const files = [];
function walk(p) {
  const st = statSync(p);
  if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  else if (/\.test\.ts$/.test(p)) files.push(resolve(p));
}
for (const r of roots) walk(r);

// Child test processes load TypeScript through tsx.
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --import tsx`.trim();

const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
const stream = run({ files, concurrency: Number(process.env.REMOS_TEST_CONCURRENCY ?? 2), timeout: 240_000 });
stream.on("test:diagnostic", (d) => {
  const m = /^(pass|fail|skipped|todo|cancelled) (\d+)$/.exec(d.message);
  if (m && d.nesting === 0) counts[m[1]] = Number(m[2]);
});
stream.compose(spec).pipe(process.stdout);
stream.on("end", () => {
  const failed = counts.fail + counts.cancelled;
  setImmediate(() => {
    console.log(`${counts.pass} passed, ${failed} failed, ${counts.skipped + counts.todo} skipped`);
    process.exitCode = failed > 0 ? 1 : 0;
  });
});

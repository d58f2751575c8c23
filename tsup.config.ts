import type { Plugin } from "esbuild";
import { defineConfig } from "tsup";

/**
 * The build. One ESM build with code splitting: the CLI entry loads a command (and the transport it needs)
 * only when that command runs, which keeps `mos call` cold start close to `node -e 0` (issue 7).
 *
 * commander is bundled into the CLI rather than loaded from node_modules: as an external CommonJS package
 * it costs a package-exports resolution, the CJS loader, the cjs-module-lexer pass over its entry and seven
 * file reads on every `mos` run. Its `require("node:…")` calls go through `commanderBuiltins` below, so
 * `node:child_process` (which drags in net, dgram and the stream stack) is loaded only if commander ever
 * spawns an executable subcommand, which mos never does.
 */

/** Builtins commander requires, and the ones it may load on first use rather than at import. */
const COMMANDER_BUILTINS = /^node:(events|child_process|path|fs|process)$/;
const LAZY_BUILTINS = new Set(["node:child_process"]);

function isCommanderFile(path: string): boolean {
  return /[\\/]node_modules[\\/]commander[\\/]/.test(path);
}

/**
 * Resolves commander's builtin `require`s (bundled CommonJS in an ESM output has no `require`) to small
 * CommonJS modules that take the builtin from `process.getBuiltinModule` (Node ≥ 20.16; no ESM facade, no
 * `node:module` import); every other importer of these builtins keeps a plain external `import`.
 * `node:child_process` becomes an object whose `spawn` loads the real module when first called.
 */
const commanderBuiltins: Plugin = {
  name: "commander-builtins",
  setup(build) {
    build.onResolve({ filter: COMMANDER_BUILTINS }, (args) => {
      if (!isCommanderFile(args.importer)) return { path: args.path, external: true };
      return { path: args.path, namespace: "commander-builtin" };
    });
    build.onLoad({ filter: /.*/, namespace: "commander-builtin" }, (args) => {
      const id = JSON.stringify(args.path);
      const contents = LAZY_BUILTINS.has(args.path)
        ? `let real;\nmodule.exports = { spawn: (...a) => (real ??= process.getBuiltinModule(${id})).spawn(...a) };\n`
        : `module.exports = process.getBuiltinModule(${id});\n`;
      return { loader: "js", contents };
    });
  },
};

export default defineConfig({
  entry: {
    index: "src/index.ts",
    device: "src/device/index.ts",
    cloud: "src/cloud/index.ts",
    "cloud-aws": "src/cloud/provision/aws-iot-setup.ts",
    "cli/mos": "src/cli/mos.ts",
  },
  format: ["esm"],
  target: "node20",
  platform: "node",
  splitting: true,
  sourcemap: true,
  dts: {
    entry: {
      index: "src/index.ts",
      device: "src/device/index.ts",
      cloud: "src/cloud/index.ts",
      "cloud-aws": "src/cloud/provision/aws-iot-setup.ts",
    },
  },
  clean: false,
  // Runtime dependencies stay external (npm installs them; bundling native serialport bindings breaks),
  // except commander, which only the CLI uses (see above). The builtin pattern lets commanderBuiltins see
  // commander's `node:` requires before the external rule does.
  skipNodeModulesBundle: true,
  noExternal: ["commander", COMMANDER_BUILTINS],
  esbuildPlugins: [commanderBuiltins],
  // Keep `node:` specifiers (tsup strips them by default, which would hide commander's from the plugin).
  removeNodeProtocol: false,
  shims: false,
});

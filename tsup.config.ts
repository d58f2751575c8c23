import { defineConfig } from "tsup";

// One ESM build with code splitting: the CLI entry loads a command (and the transport it needs)
// only when that command runs, which keeps `mos call` cold start close to `node -e 0`.
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
  // Runtime dependencies stay external: npm installs them, and bundling native serialport bindings breaks.
  skipNodeModulesBundle: true,
  shims: false,
});

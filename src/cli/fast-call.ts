/**
 * The argv of a plain `mos [global flags] call METHOD [JSON]`, read without commander (which is most of
 * `mos call`'s start-up: issue 7). It accepts only what it reads exactly as commander does — the global
 * flags of GLOBAL_FLAGS as `--flag`, `--flag VALUE`, `--flag=VALUE` or `-v`, anywhere, their `MOS_*`
 * environment variables, and one or two operands after `call` — and gives up (undefined) on anything
 * else: help and version flags, unknown or combined flags, `--`, a value that starts with `-`, a value
 * its parser refuses, a wrong number of operands. mos.ts then runs commander, which prints its usual
 * messages; so a fast-path run behaves exactly as the commander run would (test/cli/fast-call.test.ts
 * checks the two agree on generated command lines).
 */
import { GLOBAL_FLAGS, type GlobalFlag, type GlobalOptions, envName, longName } from "./options.js";

export interface FastCall {
  opts: GlobalOptions;
  method: string;
  json: string | undefined;
}

interface FlagSpec {
  flag: GlobalFlag;
  /** The key in opts (commander's attributeName: camelCase, without `no-`). */
  key: string;
  takesValue: boolean;
  negate: boolean;
  env: string;
}

function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

let specs: Map<string, FlagSpec> | undefined;
let ordered: FlagSpec[] = [];

/** `--long` and `-s` → spec, built on first use. */
function flagSpecs(): Map<string, FlagSpec> {
  if (specs) return specs;
  specs = new Map();
  ordered = [];
  for (const flag of GLOBAL_FLAGS) {
    const long = longName(flag);
    const negate = long.startsWith("no-");
    const spec: FlagSpec = {
      flag,
      key: camel(negate ? long.slice(3) : long),
      takesValue: /<[^>]+>/.test(flag.flags),
      negate,
      env: envName(flag),
    };
    ordered.push(spec);
    specs.set("--" + long, spec);
    const short = /^-([A-Za-z])\b/.exec(flag.flags)?.[1];
    if (short) specs.set("-" + short, spec);
  }
  return specs;
}

class GiveUp extends Error {}

function valueOf(spec: FlagSpec, text: string): string | number {
  if (!spec.flag.parse) return text;
  try {
    return spec.flag.parse(text);
  } catch {
    throw new GiveUp(); // commander reports it (with its own ordering of messages)
  }
}

/**
 * Read `argv` (after normaliseGoBooleans) as a plain `call`, or undefined when commander must read it.
 * `env` is where the `MOS_*` variables come from (process.env).
 */
export function parseFastCall(argv: readonly string[], env: NodeJS.ProcessEnv): FastCall | undefined {
  try {
    return parse(argv, env);
  } catch (e) {
    if (e instanceof GiveUp) return undefined;
    throw e;
  }
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): FastCall | undefined {
  const known = flagSpecs();
  const values: Record<string, unknown> = {};
  const fromCli = new Set<string>();
  for (const spec of ordered) {
    if (spec.negate) values[spec.key] = spec.flag.default ?? true;
    else if (spec.flag.default !== undefined) values[spec.key] = spec.flag.default;
  }
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.length <= 1 || arg[0] !== "-") {
      operands.push(arg);
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const spec = known.get(eq > 2 ? arg.slice(0, eq) : arg);
    if (!spec) return undefined; // help, version, unknown, combined short flags, `--`
    if (eq > 2) {
      if (!spec.takesValue) return undefined;
      values[spec.key] = valueOf(spec, arg.slice(eq + 1));
    } else if (spec.takesValue) {
      const value = argv[i + 1];
      if (value === undefined || (value.length > 1 && value[0] === "-")) return undefined;
      i++;
      values[spec.key] = valueOf(spec, value);
    } else {
      values[spec.key] = !spec.negate;
    }
    fromCli.add(spec.key);
  }
  if (operands[0] !== "call" || operands.length < 2 || operands.length > 3) return undefined;
  for (const spec of ordered) {
    if (fromCli.has(spec.key) || !(spec.env in env)) continue;
    values[spec.key] = spec.takesValue ? valueOf(spec, env[spec.env] as string) : !spec.negate;
  }
  return { opts: values as unknown as GlobalOptions, method: operands[1], json: operands[2] };
}

/**
 * A small JSON Schema validator for the subset remos handlers declare as `argsSchema` (pure, no I/O).
 *
 * Supported keywords: `type` (string or array of: object, array, string, number, integer, boolean, null),
 * `properties`, `required`, `additionalProperties` (boolean or schema), `items` (one schema), `enum`,
 * `const`, `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`. Other keywords
 * (`description`, `title`, `default`, `$schema`...) are accepted and ignored.
 *
 * Messages follow the firmware's style so that a schema-checked handler answers like a C one:
 * `filename is required`, `offset must be integer`, `edge must be one of "pos", "neg", "any"`.
 */
/** A JSON Schema (draft 2020-12 subset) as a plain object. */
export type JsonSchema = { [key: string]: unknown };

type TypeName = "object" | "array" | "string" | "number" | "integer" | "boolean" | "null";

function typeOf(v: unknown): TypeName | "undefined" {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  const t = typeof v;
  if (t === "number") return Number.isInteger(v) ? "integer" : "number";
  if (t === "string" || t === "boolean" || t === "object") return t;
  return "undefined";
}

function matchesType(v: unknown, want: string): boolean {
  const got = typeOf(v);
  if (want === "number") return got === "number" || got === "integer";
  return got === want;
}

function isSchema(v: unknown): v is JsonSchema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Validate `value` against `schema`. Returns the first problem as a message (with the dotted path of the
 * offending value, `params` for the whole value), or undefined when it conforms.
 */
export function validateSchema(schema: JsonSchema, value: unknown, path = ""): string | undefined {
  const name = path || "params";
  const type = schema.type;
  if (typeof type === "string" || Array.isArray(type)) {
    const types = (Array.isArray(type) ? type : [type]).filter((t): t is string => typeof t === "string");
    if (!types.some((t) => matchesType(value, t))) return `${name} must be ${types.join(" or ")}`;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => deepEqual(e, value))) {
    return `${name} must be one of ${schema.enum.map(show).join(", ")}`;
  }
  if ("const" in schema && !deepEqual(schema.const, value)) return `${name} must be ${show(schema.const)}`;
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) return `${name} must be >= ${schema.minimum}`;
    if (typeof schema.maximum === "number" && value > schema.maximum) return `${name} must be <= ${schema.maximum}`;
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) return `${name} must have at least ${schema.minLength} characters`;
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) return `${name} must have at most ${schema.maxLength} characters`;
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) return `${name} must have at least ${schema.minItems} items`;
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) return `${name} must have at most ${schema.maxItems} items`;
    if (isSchema(schema.items)) {
      for (let i = 0; i < value.length; i++) {
        const m = validateSchema(schema.items, value[i], `${path || "params"}[${i}]`);
        if (m) return m;
      }
    }
  }
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>;
    const props = isSchema(schema.properties) ? schema.properties : {};
    if (Array.isArray(schema.required)) {
      for (const r of schema.required) {
        if (typeof r === "string" && obj[r] === undefined) return `${path ? path + "." : ""}${r} is required`;
      }
    }
    for (const [k, v] of Object.entries(obj)) {
      const sub = props[k];
      const childPath = path ? `${path}.${k}` : k;
      if (isSchema(sub)) {
        const m = validateSchema(sub, v, childPath);
        if (m) return m;
      } else if (schema.additionalProperties === false) {
        return `${childPath} is not allowed`;
      } else if (isSchema(schema.additionalProperties)) {
        const m = validateSchema(schema.additionalProperties, v, childPath);
        if (m) return m;
      }
    }
  }
  return undefined;
}

/** The value a handler's params are checked as: absent params count as `{}` for an object schema. */
export function paramsForValidation(schema: JsonSchema, params: unknown): unknown {
  if ((params === undefined || params === null) && (schema.type === "object" || isSchema(schema.properties))) return {};
  return params;
}

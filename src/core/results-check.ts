/**
 * A results.json is input: the extension reads `.fairprune/sessions/* /results.json` from whatever
 * workspace is open, also in Restricted Mode. Before anything acts on one it is checked against
 * results.schema.json (generated from src/protocol/results.ts): every field of the right type,
 * numbers finite, point and session ids and model folders of the safe shapes the schema gives, and
 * every folder it names inside its own session folder. Pure: file-system paths only, no vscode.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { SessionResults } from '../protocol/results';
import schema from '../../results.schema.json';

type Schema = {
  $ref?: string;
  type?: string;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  items?: Schema;
  anyOf?: Schema[];
  pattern?: string;
};

const defs = (schema as unknown as { $defs: Record<string, Schema> }).$defs;
const patterns = new Map<string, RegExp>();

/** Largest results.json the panels read: a real session's file is well under this. */
export const MAX_RESULTS_BYTES = 64 * 2 ** 20;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** The first place where `value` breaks `s`, as "path: problem", or undefined. */
function check(value: unknown, s: Schema, at: string): string | undefined {
  if (s.$ref) return check(value, defs[s.$ref.replace('#/$defs/', '')], at);
  if (s.anyOf) {
    const problems = s.anyOf.map((alt) => check(value, alt, at));
    if (problems.every((p) => p !== undefined)) {
      return problems.find((p) => p && !p.endsWith('is not null')) ?? problems[0];
    }
  }
  if (s.const !== undefined && value !== s.const)
    return `${at}: is ${JSON.stringify(value)}, expected ${JSON.stringify(s.const)}`;
  if (s.enum && !s.enum.includes(value))
    return `${at}: is ${JSON.stringify(value)}, expected one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  if (s.type) {
    const t = typeOf(value);
    if (t !== s.type)
      return `${at}: is ${t === 'null' ? 'null' : `a ${t}`}, expected ${s.type === 'null' ? 'null' : `a ${s.type}`}`;
    if (t === 'number' && !Number.isFinite(value)) return `${at}: is not a finite number`;
  }
  if (s.pattern && typeof value === 'string') {
    let re = patterns.get(s.pattern);
    if (!re) patterns.set(s.pattern, (re = new RegExp(s.pattern)));
    if (!re.test(value)) return `${at}: ${JSON.stringify(value.slice(0, 120))} does not match ${s.pattern}`;
  }
  if (s.type === 'object' && value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of s.required ?? []) if (!(key in obj)) return `${at}.${key}: is missing`;
    for (const [key, v] of Object.entries(obj)) {
      const sub =
        s.properties?.[key] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
      if (sub && v !== undefined) {
        const p = check(v, sub, `${at}.${key}`);
        if (p) return p;
      }
    }
  }
  if (s.type === 'array' && Array.isArray(value) && s.items) {
    for (let i = 0; i < value.length; i++) {
      const p = check(value[i], s.items, `${at}[${i}]`);
      if (p) return p;
    }
  }
  return undefined;
}

/** Whether `rel`, resolved against `dir`, stays inside it (after symlinks, where it exists). */
export function staysInside(dir: string, rel: string): boolean {
  if (path.isAbsolute(rel) || path.win32.isAbsolute(rel)) return false;
  const resolved = path.resolve(dir, rel);
  const inside = (root: string, p: string) => p === root || p.startsWith(root + path.sep);
  if (!inside(path.resolve(dir), resolved)) return false;
  try {
    return inside(fs.realpathSync(dir), fs.realpathSync(resolved));
  } catch {
    return true; // not there (yet): nothing to follow
  }
}

/**
 * The problem with a parsed results.json of the session folder `sessionDir`, in one sentence, or
 * undefined when it can be trusted to be what the engine wrote.
 */
export function resultsProblem(results: unknown, sessionDir: string): string | undefined {
  const bad = check(results, { $ref: '#/$defs/SessionResults' }, 'results');
  if (bad) return bad;
  const r = results as SessionResults;
  const ids = new Set<string>();
  for (const [i, p] of r.points.entries()) {
    if (ids.has(p.id)) return `results.points[${i}].id: '${p.id}' appears twice`;
    ids.add(p.id);
    if (!staysInside(sessionDir, p.modelDir))
      return `results.points[${i}].modelDir: '${p.modelDir}' leads outside the session folder`;
    const shrunk = p.structure?.modelDir;
    if (shrunk && !staysInside(sessionDir, shrunk))
      return `results.points[${i}].structure.modelDir: '${shrunk}' leads outside the session folder`;
  }
  return undefined;
}

/** Reads and checks `<sessionDir>/results.json`: the results, or the problem (file and field) in one line. */
export function readResultsChecked(sessionDir: string): { results: SessionResults } | { problem: string } {
  const file = path.join(sessionDir, 'results.json');
  const stat = fs.lstatSync(file);
  if (!stat.isFile()) return { problem: `${file} is not a regular file` };
  if (stat.size > MAX_RESULTS_BYTES)
    return { problem: `${file} is ${stat.size.toLocaleString('en')} bytes, more than a results file can be` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return { problem: `${file} is not valid JSON (${(e as Error).message})` };
  }
  const problem = resultsProblem(parsed, sessionDir);
  return problem ? { problem: `${file}: ${problem}` } : { results: parsed as SessionResults };
}

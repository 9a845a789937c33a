/**
 * Sessions on disk, for whoever lists or repairs them (the editor's tree, the command line):
 * finding them, reading them, and marking one ended when its engine died without saying so.
 * File-system only: cheap to load in the extension host.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { SessionResults, SessionStatus } from '../protocol/results';
import { writeFileAtomic } from './atomic';
import { writeReport } from './report';
import { readResultsChecked } from './results-check';

export interface StoredSession {
  dir: string;
  results: SessionResults;
}

/** Parsed results.json files by folder, reused while the file is unchanged (same mtime and size):
 *  the editor's tree, report and curves all read the running session after every point, and a long
 *  session's file is hundreds of kilobytes. Results files are replaced whole (temp file + rename),
 *  never edited in place, and readers treat what they get as read-only. */
const cache = new Map<string, { mtimeMs: number; size: number; session: StoredSession }>();
const CACHE_LIMIT = 64;

/** Session folders whose results.json failed its check, with the problem (see results-check.ts). */
const problems = new Map<string, string>();

/** Why the results.json of `dir` was refused, when it was. */
export function sessionProblem(dir: string): string | undefined {
  return problems.get(dir);
}

/**
 * The session in `dir`, when its results.json passes the schema and path checks; a file that does
 * not is never acted on: `sessionProblem(dir)` says why.
 */
export function readSession(dir: string): StoredSession | undefined {
  const file = path.join(dir, 'results.json');
  try {
    const stat = fs.statSync(file);
    const hit = cache.get(dir);
    if (hit && hit.mtimeMs === stat.mtimeMs && hit.size === stat.size) return hit.session;
    if (!fs.existsSync(file)) return undefined;
    const checked = readResultsChecked(dir);
    if ('problem' in checked) {
      problems.set(dir, checked.problem);
      cache.delete(dir);
      return undefined;
    }
    problems.delete(dir);
    const results = checked.results;
    const session = { dir, results };
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(dir, { mtimeMs: stat.mtimeMs, size: stat.size, session });
    return session;
  } catch {
    cache.delete(dir);
    return undefined; // being written for the first time, or not a session: skipped
  }
}

/** Session folders under `<outDir>/sessions` whose results.json was refused, with the problem. */
export function refusedSessions(outDir: string): { dir: string; problem: string }[] {
  const root = path.join(outDir, 'sessions');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((name) => path.join(root, name))
    .filter((dir) => !readSession(dir) && problems.has(dir))
    .map((dir) => ({ dir, problem: problems.get(dir)! }));
}

/** Every readable session under `<outDir>/sessions`, newest first. */
export function listSessions(outDir: string): StoredSession[] {
  const root = path.join(outDir, 'sessions');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((name) => readSession(path.join(root, name)))
    .filter((s): s is StoredSession => Boolean(s))
    .sort((a, b) => b.results.createdAt.localeCompare(a.results.createdAt));
}

/**
 * A session whose engine ended without finishing it (killed, crashed, out of memory): record how it
 * ended, keeping every point it finished, and write its report.
 */
export function markSessionEnded(
  dir: string,
  status: Exclude<SessionStatus, 'running' | 'completed'>,
  error?: string,
): SessionResults | undefined {
  const s = readSession(dir);
  if (!s || s.results.status !== 'running') return s?.results;
  const results: SessionResults = {
    ...s.results,
    status,
    finishedAt: new Date().toISOString(),
    ...(error ? { error } : {}),
  };
  writeFileAtomic(path.join(dir, 'results.json'), JSON.stringify(results, null, 1));
  if (results.dense) writeReport(path.join(dir, 'report.md'), results);
  return results;
}

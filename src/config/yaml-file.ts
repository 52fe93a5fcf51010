import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './config-error.js';
import { readText } from './files.js';
import { FILE_KEYS } from './options.js';
import { CLUSTER_KEYS, FILE_SCHEMA, type FileValues, issueProblem } from './schema.js';
import { didYouMean } from './suggest.js';

export interface ConfigFile {
  path: string;
  /** Relative paths inside the file are resolved against this directory. */
  dir: string;
  values: FileValues;
  /** `path:line` of a top-level key (or of a nested one, as a list of keys), for messages that point into the file. */
  where(key: string | readonly string[]): string;
}

type Doc = ReturnType<typeof parseDocument>;
type Yaml = typeof import('yaml');

/**
 * The YAML parser, loaded on first use: most runs (a sidecar configured by flags and environment)
 * never read a config file, and loading it costs every process about 3 MB of resident memory.
 */
let yamlModule: Yaml | undefined;
function yaml(): Yaml {
  yamlModule ??= createRequire(import.meta.url)('yaml') as Yaml;
  return yamlModule;
}

/** 1-based line of the key at `path` in the document, if it is there. */
function keyLine(doc: Doc, lc: LineCounter, path: readonly PropertyKey[]): number | undefined {
  const { isMap, isScalar } = yaml();
  let node: unknown = doc.contents;
  for (const [i, seg] of path.entries()) {
    if (!isMap(node)) return undefined;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
    if (!pair) return undefined;
    if (i === path.length - 1) {
      const offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      return offset === undefined ? undefined : lc.linePos(offset).line;
    }
    node = pair.value;
  }
  return undefined;
}

export function show(value: unknown): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function describe(issue: z.core.$ZodIssue, doc: Doc, lc: LineCounter) {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] as string;
    const path = [...issue.path.map(String), key];
    // Inside `clusters.<name>` only the per-cluster keys are allowed.
    const inCluster = issue.path[0] === 'clusters';
    const message =
      key === 'config' && !inCluster
        ? 'config cannot be set inside the config file; use --config or DSQL_PROXY_CONFIG'
        : inCluster
          ? `unknown key "${path.join('.')}"${didYouMean(key, CLUSTER_KEYS)}${FILE_KEYS.includes(key) ? ` (${key} is set once for the whole proxy, at the top level)` : ''}`
          : `unknown key "${key}"${didYouMean(key, FILE_KEYS)}`;
    return { key: path.join('.'), line: keyLine(doc, lc, path), message };
  }
  const key = issue.path.map(String).join('.');
  const value = issue.input === undefined || typeof issue.input === 'object' ? '' : ` ${show(issue.input)}`;
  return {
    key,
    line: keyLine(doc, lc, issue.path),
    message: `invalid ${key}${value}: ${issueProblem(issue)}`,
  };
}

/** Reads, parses and validates the YAML config file; any problem is one ConfigError with `file:line`. */
export function loadConfigFile(path: string, label: string): ConfigFile {
  const text = readText(path, 'config file', label, 'config');
  const { LineCounter, parseDocument } = yaml();
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = lc.linePos(yamlError.pos[0]).line;
    const lineText = text.split(/\r?\n/)[line - 1] ?? '';
    const hint = /:\s*[[{]/.test(lineText)
      ? ' (quote values that start with [ or {, e.g. listen: "[::1]:5432")'
      : '';
    throw new ConfigError(`${path}:${line}: invalid YAML: ${yamlError.message.split('\n')[0]}${hint}`, {
      file: path,
      line,
    });
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    // yaml refuses aliases that expand too far (a "billion laughs" file) with a plain ReferenceError;
    // report it as invalid YAML like any other, not as a crash (found by config-load.property.test.ts).
    throw new ConfigError(`${path}: invalid YAML: ${err instanceof Error ? err.message : String(err)}`, {
      file: path,
      cause: err,
    });
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${path}: expected "key: value" lines at the top level, got ${show(data)}`, {
      file: path,
    });
  }
  const r = FILE_SCHEMA.safeParse(data, { reportInput: true });
  if (!r.success) {
    const problems = r.error.issues.map((issue) => describe(issue, doc, lc));
    problems.sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
    const p = problems[0] as (typeof problems)[number];
    const at = p.line === undefined ? path : `${path}:${p.line}`;
    throw new ConfigError(`${at}: ${p.message}`, {
      key: p.key.split('.')[0] as string,
      file: path,
      ...(p.line === undefined ? {} : { line: p.line }),
    });
  }
  return {
    path,
    dir: dirname(path),
    values: r.data,
    where(key) {
      const line = keyLine(doc, lc, typeof key === 'string' ? [key] : key);
      return line === undefined ? path : `${path}:${line}`;
    },
  };
}

/**
 * The shape of src/: every `src/**\/*.ts` parsed with the TypeScript compiler API, every relative
 * import followed (static, type-only, re-exports, `import()` and `import('...')` types alike), and
 * the graph checked for cycles and against the layers below.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * The layers, lowest first: a file may import files of its own folder and of any lower layer, never
 * of its own layer's other folders or of a higher one. A top-level file (`proxy.ts`) is its own
 * folder, named without `.ts`.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['errors', 'log', 'core', 'dsql'],
  ['protocol'],
  ['io', 'token'],
  ['auth', 'handshake', 'relay', 'upstream'],
  ['compat', 'retry'],
  ['config'],
  ['session', 'wiring'],
  ['listener', 'admin', 'check', 'local-endpoint'],
  ['proxy'],
  ['demo'],
  ['cli', 'index'],
];

/** Cycles known and being removed; each entry is the sorted files of one strongly connected component. */
const KNOWN_CYCLES: readonly string[] = [];

/** Imports against the layers, known and to be moved. */
const KNOWN_UPWARD: readonly string[] = [];

/** The relative module specifiers a source file names, in every form that creates an edge. */
export function importedSpecifiers(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) found.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      if (ts.isStringLiteral(e)) found.push(e.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) found.push(arg.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const lit = node.argument.literal;
      if (ts.isStringLiteral(lit)) found.push(lit.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((s) => s.startsWith('.'));
}

/** file (relative to src, `/`-separated) -> the src files it imports. */
function buildGraph(): Map<string, string[]> {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.split('\\').join('/'))
    .sort();
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const abs = join(SRC, file);
    const deps = importedSpecifiers(file, readFileSync(abs, 'utf8')).map((spec) => {
      const target = resolve(dirname(abs), spec.replace(/\.js$/, '.ts'));
      assert.ok(existsSync(target), `${file}: cannot resolve import '${spec}'`);
      return relative(SRC, target).split('\\').join('/');
    });
    graph.set(file, [...new Set(deps)]);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) strong(v);
  return out;
}

/** One concrete cycle through a component's first file, as `a -> b -> a`, to name in a failure. */
export function describeCycle(graph: ReadonlyMap<string, readonly string[]>, component: string[]): string {
  const members = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = previous.get(u)!) path.splice(1, 0, u);
        return [...path, start].join(' -> ');
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return component.join(', ');
}

const folderOf = (file: string): string =>
  file.includes('/') ? file.split('/')[0]! : file.replace(/\.ts$/, '');
const layerOf = (folder: string): number => LAYERS.findIndex((layer) => layer.includes(folder));

describe('import graph of src/', () => {
  const graph = buildGraph();

  it('sees the whole tree', () => {
    assert.ok(graph.size > 50, `only ${graph.size} files under ${SRC}`);
    assert.ok(graph.get('proxy.ts')!.includes('config/load.ts') || graph.get('proxy.ts')!.length > 5);
  });

  it('has no import cycle, type-only imports included', () => {
    const found = cycles(graph).filter((c) => !KNOWN_CYCLES.includes(c.join(' ')));
    assert.deepEqual(
      found.map((c) => describeCycle(graph, c)),
      [],
      'import cycles (break each one: move the shared piece down a layer)',
    );
  });

  it('keeps no allowance for a cycle or an upward import that is gone', () => {
    const found = cycles(graph).map((c) => c.join(' '));
    const edges = [...graph].flatMap(([file, deps]) => deps.map((dep) => `${file} -> ${dep}`));
    assert.deepEqual(
      [...KNOWN_CYCLES.filter((c) => !found.includes(c)), ...KNOWN_UPWARD.filter((e) => !edges.includes(e))],
      [],
      'fixed: delete these from KNOWN_CYCLES / KNOWN_UPWARD',
    );
  });

  it('puts every folder in a layer', () => {
    const folders = [...new Set([...graph.keys()].map(folderOf))];
    assert.deepEqual(
      folders.filter((f) => layerOf(f) < 0),
      [],
      'folders with no layer: add them to LAYERS',
    );
  });

  it('imports only downwards through the layers', () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      const from = folderOf(file);
      for (const dep of deps) {
        const to = folderOf(dep);
        const edge = `${file} -> ${dep}`;
        if (to !== from && layerOf(to) >= layerOf(from) && !KNOWN_UPWARD.includes(edge)) wrong.push(edge);
      }
    }
    assert.deepEqual(wrong, [], 'imports against the layers (see LAYERS)');
  });
});

describe('import graph helpers', () => {
  it('reads every import form, and only relative ones', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "export type * from './d.js';",
      "import e = require('./e.js');",
      "const f = await import('./f.js');",
      "type G = typeof import('./g.js');",
      "import pino from 'pino';",
    ].join('\n');
    assert.deepEqual(importedSpecifiers('x.ts', text), [
      './a.js',
      '../b.js',
      './c.js',
      './d.js',
      './e.js',
      './f.js',
      './g.js',
    ]);
  });

  it('finds and names a cycle, and a file importing itself', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts', 'd.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    const found = cycles(graph);
    assert.deepEqual(found, [['a.ts', 'b.ts', 'c.ts'], ['e.ts']]);
    assert.equal(describeCycle(graph, found[0]!), 'a.ts -> b.ts -> c.ts -> a.ts');
    assert.deepEqual(
      cycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
      [],
    );
  });
});

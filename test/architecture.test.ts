/**
 * Pins the layering of ../shared/style.md §4.1: dependencies point inward to the dialect contract,
 * only the composition root knows concrete dialects and config, and the simulator is an independent
 * reading of the protocol spec (it imports nothing from src/).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '..');

function sourceFiles(folder: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(join(root, folder))) {
    const path = join(folder, name);
    if (statSync(join(root, path)).isDirectory()) found.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

interface ImportEdge {
  from: string;
  to: string;
  isTypeOnly: boolean;
}

function importsOf(file: string): ImportEdge[] {
  const text = readFileSync(join(root, file), 'utf8');
  const edges: ImportEdge[] = [];
  const pattern = /(import|export)\s+(type\s+)?[^'";]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const match of text.matchAll(pattern)) {
    const target = match[3] ?? match[4];
    edges.push({ from: file, to: relative(root, resolve(root, dirname(file), target)), isTypeOnly: Boolean(match[2]) });
  }
  return edges;
}

const srcEdges = sourceFiles('src').flatMap(importsOf);

test('the import scanner sees the project graph (guards the other checks against a broken pattern)', () => {
  assert.ok(srcEdges.length > 30, `only ${srcEdges.length} imports found`);
  assert.ok(srcEdges.some((edge) => edge.to === 'src/upstream/dialect.ts' && edge.isTypeOnly));
});

test('the simulator imports nothing from src/ (independent reading of the spec)', () => {
  const offending = sourceFiles('simulator').flatMap(importsOf).filter((edge) => edge.to.startsWith('src/'));
  assert.deepEqual(offending, []);
});

test('http/, chat/ and accounts/ reach upstream code only through upstream/dialect.ts', () => {
  const offending = srcEdges.filter(
    (edge) => /^src\/(http|chat|accounts)\//.test(edge.from) && edge.to.startsWith('src/upstream/') && edge.to !== 'src/upstream/dialect.ts',
  );
  assert.deepEqual(offending, []);
});

test('only the composition root imports the concrete dialects', () => {
  const offending = srcEdges.filter(
    (edge) => /^src\/upstream\/(legacy|connect)\//.test(edge.to) && !edge.from.startsWith(dirname(edge.to)) && !/^src\/(main|cli|doctor|composition)/.test(edge.from),
  );
  assert.deepEqual(offending, []);
});

test('only main.ts and cli.ts read config.ts (others may import its types)', () => {
  const offending = srcEdges.filter((edge) => edge.to === 'src/config.ts' && !edge.isTypeOnly && !/^src\/(main|cli)\.ts$/.test(edge.from));
  assert.deepEqual(offending, []);
});

test('leaf modules import no project module except errors.ts', () => {
  const leaves = ['src/errors.ts', 'src/jwt.ts', 'src/log.ts', 'src/metrics.ts', 'src/config.ts'];
  const offending = srcEdges.filter((edge) => leaves.includes(edge.from) && edge.to !== 'src/errors.ts');
  assert.deepEqual(offending, []);
});

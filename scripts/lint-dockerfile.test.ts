/** Tests for lint-dockerfile.ts: the project's Dockerfile passes, and each rule catches its mistake (issue 6). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { baseImageProblem, lintDockerfile, parseDockerfile } from './lint-dockerfile.ts';

const repositoryDockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');

const good = [
  'FROM node:24-alpine AS deps',
  'RUN npm ci --omit=dev',
  'FROM node:24-alpine',
  'COPY --from=deps /app/node_modules ./node_modules',
  'USER node',
  'HEALTHCHECK CMD ["node", "-e", "1"]',
  'CMD ["node", "src/cli.ts", "serve"]',
].join('\n');

function rules(text: string): string[] {
  return lintDockerfile(text).map((finding) => finding.rule);
}

test("the repository's Dockerfile passes every rule", () => {
  assert.deepEqual(lintDockerfile(repositoryDockerfile), []);
});

test('a minimal good Dockerfile passes', () => {
  assert.deepEqual(rules(good), []);
});

test('pinned-base-image: missing tag, latest and non-version tags fail; stage names, digests and ARG defaults pass', () => {
  assert.deepEqual(rules(good.replace('FROM node:24-alpine\n', 'FROM node\n')), ['pinned-base-image']);
  assert.deepEqual(rules(good.replace('FROM node:24-alpine AS deps', 'FROM node:latest AS deps')), ['pinned-base-image']);
  assert.deepEqual(rules(good.replace('FROM node:24-alpine\n', 'FROM node:lts-alpine\n')), ['pinned-base-image']);
  assert.deepEqual(rules(good.replace('FROM node:24-alpine\n', 'FROM deps\n')), []);
  assert.deepEqual(rules(`ARG NODE_MAJOR=24\n${good.replace('node:24-alpine AS', 'node:${NODE_MAJOR}-alpine AS')}`), []);
  assert.deepEqual(rules(good.replace('node:24-alpine AS', 'node:${UNSET}-alpine AS')), ['pinned-base-image']);
  assert.equal(baseImageProblem(`node@sha256:${'a'.repeat(64)}`), undefined);
  assert.equal(baseImageProblem('registry.example:5000/team/node'), 'no tag, which means latest');
  assert.equal(baseImageProblem('registry.example:5000/team/node:24.3-alpine'), undefined);
});

test('non-root-user: no USER, or USER root in the final stage, fails', () => {
  assert.deepEqual(rules(good.replace('USER node\n', '')), ['non-root-user']);
  assert.deepEqual(rules(good.replace('USER node', 'USER 0:0')), ['non-root-user']);
  // A USER in an earlier stage does not count for the final one.
  assert.deepEqual(rules(good.replace('RUN npm ci', 'USER node\nRUN npm ci').replace('USER node\nHEALTH', 'HEALTH')),
    ['non-root-user']);
});

test('healthcheck: missing or NONE fails', () => {
  assert.deepEqual(rules(good.replace(/HEALTHCHECK.*\n/, '')), ['healthcheck']);
  assert.deepEqual(rules(good.replace(/HEALTHCHECK.*\n/, 'HEALTHCHECK NONE\n')), ['healthcheck']);
});

test('no-add-url, npm-ci and exec-form', () => {
  assert.deepEqual(rules(good.replace('USER node', 'ADD https://example.invalid/tool.tgz /opt/\nUSER node')), ['no-add-url']);
  assert.deepEqual(rules(good.replace('USER node', 'ADD ./local.tgz /opt/\nUSER node')), []);
  assert.deepEqual(rules(good.replace('npm ci --omit=dev', 'npm install --omit=dev')), ['npm-ci']);
  assert.deepEqual(rules(good.replace('npm ci --omit=dev', 'npm i')), ['npm-ci']);
  assert.deepEqual(rules(good.replace('CMD ["node", "src/cli.ts", "serve"]', 'CMD node src/cli.ts serve')), ['exec-form']);
  assert.deepEqual(rules(`${good}\nENTRYPOINT ["tini", "--"`), ['exec-form']);
});

test('parser: continuations are joined, comments inside them dropped, keywords upper-cased', () => {
  const parsed = parseDockerfile('# header\nfrom node:24-alpine\nRUN a \\\n  # note\n  && b\n\nCMD ["x"]\n');
  assert.deepEqual(parsed, [
    { keyword: 'FROM', args: 'node:24-alpine', line: 2 },
    { keyword: 'RUN', args: 'a && b', line: 3 },
    { keyword: 'CMD', args: '["x"]', line: 7 },
  ]);
});

test('command line: exit 0 on the repository Dockerfile, 1 with findings on stderr otherwise', () => {
  const script = new URL('./lint-dockerfile.ts', import.meta.url).pathname;
  const ok = spawnSync(process.execPath, [script, new URL('../Dockerfile', import.meta.url).pathname], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const directory = mkdtempSync(join(tmpdir(), 'lint-dockerfile-'));
  const badFile = join(directory, 'Dockerfile');
  writeFileSync(badFile, 'FROM node\nCMD node x\n');
  const bad = spawnSync(process.execPath, [script, badFile], { encoding: 'utf8' });
  rmSync(directory, { recursive: true, force: true });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /pinned-base-image/);
  assert.match(bad.stderr, /exec-form/);
});

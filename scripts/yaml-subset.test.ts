/** Tests for yaml-subset.ts: what the deployment files use parses to the right values; the rest is refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYamlDocuments, YamlSubsetError } from './yaml-subset.ts';

test('mappings, indented and same-indent sequences, "- key:" items, scalars and comments', () => {
  const source = [
    '# leading comment',
    'name: kimi # trailing comment',
    'replicas: 2',
    'ratio: 0.5',
    'enabled: true',
    'empty:',
    'nothing: ~',
    'port: "8000"',
    "single: 'it''s'",
    'url: redis://redis:6379',
    'hash: "a # not a comment"',
    'list:',
    '  - one',
    '  - two',
    'compact:',
    '- name: first',
    '  value: 1',
    '- name: second',
    '  nested:',
    '    deep: yes',
    'flow: ["CMD", "redis-cli", "ping"]',
    'flowMap: {cpu: 100m, memory: "128Mi"}',
    'emptyList: []',
    'emptyMap: {}',
  ].join('\n');
  assert.deepEqual(parseYamlDocuments(source), [{
    name: 'kimi',
    replicas: 2,
    ratio: 0.5,
    enabled: true,
    empty: null,
    nothing: null,
    port: '8000',
    single: "it's",
    url: 'redis://redis:6379',
    hash: 'a # not a comment',
    list: ['one', 'two'],
    compact: [{ name: 'first', value: 1 }, { name: 'second', nested: { deep: 'yes' } }],
    flow: ['CMD', 'redis-cli', 'ping'],
    flowMap: { cpu: '100m', memory: '128Mi' },
    emptyList: [],
    emptyMap: {},
  }]);
});

test('--- separates documents; sequences of sequences and block scalars', () => {
  const source = 'a: 1\n---\n# second\nb:\n  - - x\n    - y\nscript: |\n  line one\n  line two\nfolded: >-\n  one\n  two\n';
  assert.deepEqual(parseYamlDocuments(source), [
    { a: 1 },
    { b: [['x', 'y']], script: 'line one\nline two\n', folded: 'one two' },
  ]);
});

test('refuses what it does not support, naming the line', () => {
  const cases: Array<[string, RegExp]> = [
    ['a:\n\tb: 1', /line 2: tab/],
    ['a: 1\na: 2', /line 2: duplicate key "a"/],
    ['a: &anchor 1', /line 1: anchors/],
    ['a: 1\n   b: 2', /line 2: unexpected indentation/],
    ['a:\n  b: 1\n c: 2', /line 3: unexpected indentation/],
    ['just a sentence', /line 1: expected "key: value"/],
    ['a: "unterminated', /line 1: unterminated/],
    ['a: [1, 2', /line 1: expected "," or "]"/],
  ];
  for (const [source, message] of cases) {
    assert.throws(() => parseYamlDocuments(source), (error: unknown) => {
      assert.ok(error instanceof YamlSubsetError);
      assert.match(error.message, message);
      return true;
    }, source);
  }
});

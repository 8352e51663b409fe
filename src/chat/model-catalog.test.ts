import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModelCatalog, parseModelMap } from './model-catalog.ts';

const catalog = createModelCatalog({ chatModel: 'k2d6-chat', chatScenario: 'SCENARIO_CHAT', thinkingEffort: 'REASONING_EFFORT_LOW' });

test('the default model is plain chat on the configured scenario (spec §3.5)', () => {
  const { choice, isFallback } = catalog.resolve(undefined);
  assert.equal(isFallback, false);
  assert.deepEqual([choice.publicId, choice.upstreamModel, choice.scenario, choice.thinking, choice.search], ['kimi', 'k2d6-chat', 'SCENARIO_CHAT', false, false]);
});

test('name switches: search, silent_search, thinking and its aliases', () => {
  assert.equal(catalog.resolve('kimi-search').choice.search, true);
  const silent = catalog.resolve('kimi-silent_search').choice;
  assert.deepEqual([silent.search, silent.silentSearch], [true, true]);
  for (const name of ['kimi-thinking', 'k1', 'kimi-k1', 'kimi-reasoner']) {
    const choice = catalog.resolve(name).choice;
    assert.equal(choice.thinking, true, name);
    assert.equal(choice.reasoningEffort, 'REASONING_EFFORT_LOW', name);
  }
  assert.equal(catalog.resolve('kimi', { useSearch: true }).choice.search, true);
  assert.equal(catalog.resolve('kimi-thinking').choice.search, false);
});

test('agent presets map to the 2026-09 catalogue, and a 20-char id selects a kimi+ agent (spec §2.3)', () => {
  const k3 = catalog.resolve('kimi-k3').choice;
  assert.deepEqual([k3.upstreamModel, k3.scenario, k3.kimiplusId, k3.agentMode], ['k3-agent', 'SCENARIO_OK_COMPUTER', 'ok-computer', 'TYPE_NORMAL']);
  assert.equal(catalog.resolve('kimi-k3-swarm').choice.agentMode, 'TYPE_ULTRA');
  assert.equal(catalog.resolve('cnbc0sqlp91ut6d3e7a0').choice.kimiplusId, 'cnbc0sqlp91ut6d3e7a0');
});

test('an unknown name falls back to the default and says so', () => {
  const { choice, isFallback } = catalog.resolve('gpt-4o');
  assert.equal(isFallback, true);
  assert.equal(choice.upstreamModel, 'k2d6-chat');
});

test('KIMI_MODEL_MAP presets override scenario names without a release', () => {
  const custom = createModelCatalog({ chatModel: 'k2d6-chat', chatScenario: 'SCENARIO_CHAT', thinkingEffort: 'REASONING_EFFORT_LOW', presets: parseModelMap('{"kimi-turbo":{"scenario":"SCENARIO_K2D5_TURBO","upstreamModel":"k2d5-turbo"}}') });
  const choice = custom.resolve('kimi-turbo-search').choice;
  assert.deepEqual([choice.scenario, choice.upstreamModel, choice.search], ['SCENARIO_K2D5_TURBO', 'k2d5-turbo', true]);
  assert.ok(custom.list().includes('kimi-turbo'));
  assert.throws(() => parseModelMap('[1'), /JSON object/);
});

test("Kimi's own catalogue ids become model names with their scenario and agent mode (spec §3.5, §9 D9)", () => {
  const live = createModelCatalog({ chatModel: 'k2d6-chat', chatScenario: 'SCENARIO_CHAT', thinkingEffort: 'REASONING_EFFORT_LOW' });
  assert.equal(live.resolve('k3-agent').isFallback, true);
  live.useUpstream([{ id: 'k3-agent', scenario: 'SCENARIO_OK_COMPUTER', kimiplusId: 'ok-computer', agentMode: 'TYPE_NORMAL', defaultReasoningEffort: 'REASONING_EFFORT_HIGH' }]);
  const { choice, isFallback } = live.resolve('k3-agent-search');
  assert.equal(isFallback, false);
  assert.deepEqual([choice.upstreamModel, choice.scenario, choice.kimiplusId, choice.agentMode, choice.search], ['k3-agent', 'SCENARIO_OK_COMPUTER', 'ok-computer', 'TYPE_NORMAL', true]);
  assert.ok(live.list([{ id: 'k3-agent' }]).includes('k3-agent-thinking'));
});

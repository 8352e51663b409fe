/**
 * @module simulator/model-catalog
 * The `GetAvailableModels` answer (spec §3.5, catalog of 2026-09-15) with every entry field the spec lists.
 */

interface CatalogSeed {
  id: string;
  key: string;
  scenario: string;
  displayName: string;
  description: string;
  kimiPlusId: string;
  agentMode: string;
  efforts: string[];
  defaultEffort: string;
  minMembershipLevel: string;
}

const SEEDS: CatalogSeed[] = [
  { id: 'k2d6-chat', key: 'k2d6', scenario: 'SCENARIO_CHAT', displayName: 'Instant', description: 'Fast answers for everyday questions', kimiPlusId: '', agentMode: '', efforts: ['REASONING_EFFORT_NONE', 'REASONING_EFFORT_LOW'], defaultEffort: 'REASONING_EFFORT_LOW', minMembershipLevel: 'LEVEL_FREE' },
  { id: 'k28-agent-preview', key: 'k28-preview', scenario: 'SCENARIO_OK_COMPUTER', displayName: 'K2.8', description: 'Agent preview', kimiPlusId: 'ok-computer', agentMode: 'TYPE_NORMAL', efforts: ['REASONING_EFFORT_LOW', 'REASONING_EFFORT_HIGH', 'REASONING_EFFORT_MAX'], defaultEffort: 'REASONING_EFFORT_HIGH', minMembershipLevel: 'LEVEL_FREE' },
  { id: 'k3-agent', key: 'k3', scenario: 'SCENARIO_OK_COMPUTER', displayName: 'K3', description: 'Agent with tools', kimiPlusId: 'ok-computer', agentMode: 'TYPE_NORMAL', efforts: ['REASONING_EFFORT_LOW', 'REASONING_EFFORT_HIGH', 'REASONING_EFFORT_MAX'], defaultEffort: 'REASONING_EFFORT_HIGH', minMembershipLevel: 'LEVEL_FREE' },
  { id: 'k3-agent-swarm', key: 'k3-agent-ultra', scenario: 'SCENARIO_OK_COMPUTER_SWARM', displayName: 'K3 Swarm', description: 'Parallel agents', kimiPlusId: 'ok-computer', agentMode: 'TYPE_ULTRA', efforts: ['REASONING_EFFORT_LOW', 'REASONING_EFFORT_HIGH', 'REASONING_EFFORT_MAX'], defaultEffort: 'REASONING_EFFORT_HIGH', minMembershipLevel: 'LEVEL_BASIC' },
];

const EFFORT_NAMES: Record<string, string> = {
  REASONING_EFFORT_NONE: 'Off',
  REASONING_EFFORT_LOW: 'Low',
  REASONING_EFFORT_HIGH: 'High',
  REASONING_EFFORT_MAX: 'Max',
};

function entry(seed: CatalogSeed): Record<string, unknown> {
  return {
    id: seed.id,
    key: seed.key,
    scenario: seed.scenario,
    displayName: seed.displayName,
    description: seed.description,
    label: seed.kimiPlusId ? ['Agent'] : [],
    ...(seed.kimiPlusId ? { kimiPlusId: seed.kimiPlusId, agentMode: seed.agentMode } : {}),
    inputPlaceholder: 'Ask Kimi anything',
    switchableTo: SEEDS.filter((other) => other.id !== seed.id).map((other) => other.id),
    reasoningEffortOptions: seed.efforts.map((effort) => ({ effort, displayName: EFFORT_NAMES[effort], description: `${EFFORT_NAMES[effort]} reasoning` })),
    defaultReasoningEffort: seed.defaultEffort,
    contextLengthOptions: [
      { contextLength: 'CONTEXT_LENGTH_L', displayName: '256K', available: true, label: '', minMembershipLevel: 'LEVEL_FREE' },
      { contextLength: 'CONTEXT_LENGTH_XL', displayName: '1M', available: false, label: 'Pro', minMembershipLevel: 'LEVEL_ADVANCED' },
    ],
    defaultContextLength: 'CONTEXT_LENGTH_L',
    minMembershipLevel: seed.minMembershipLevel,
    greeting: `Hi, I'm Kimi (${seed.displayName}).`,
  };
}

export function availableModels(): Record<string, unknown> {
  return {
    availableModels: SEEDS.map(entry),
    defaultScenario: { scenario: 'SCENARIO_CHAT', model: 'k2d6-chat' },
  };
}

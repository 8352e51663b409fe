/**
 * @module chat/model-catalog
 * Public model names and what each switches on. Kimi renames scenarios and catalogue ids often
 * (protocol spec §3.5, §9 D8/D9), so the upstream values come from settings and an optional JSON
 * map, and the switches come from words in the name, as the original kimi-free-api did.
 */
import type { CatalogModel, ModelChoice } from '../upstream/dialect.ts';

export interface ModelPreset {
  upstreamModel?: string;
  scenario?: string;
  kimiplusId?: string;
  agentMode?: string;
  reasoningEffort?: string;
  thinking?: boolean;
  search?: boolean;
}

export interface ModelCatalogOptions {
  chatModel: string;
  chatScenario: string;
  thinkingEffort: string;
  /** Extra or overriding presets by public id (setting KIMI_MODEL_MAP, JSON). */
  presets?: Record<string, ModelPreset>;
}

export interface ModelFlags {
  useSearch?: boolean;
}

export interface ResolvedModel {
  choice: ModelChoice;
  /** True when the name matched nothing we know and the default model was used. */
  isFallback: boolean;
}

/** Agent-model presets from the 2026-09 catalogue (§3.5). */
const agentPresets: Record<string, ModelPreset> = {
  'kimi-k3': { upstreamModel: 'k3-agent', scenario: 'SCENARIO_OK_COMPUTER', kimiplusId: 'ok-computer', agentMode: 'TYPE_NORMAL', reasoningEffort: 'REASONING_EFFORT_HIGH' },
  'kimi-k3-swarm': { upstreamModel: 'k3-agent-swarm', scenario: 'SCENARIO_OK_COMPUTER_SWARM', kimiplusId: 'ok-computer', agentMode: 'TYPE_ULTRA', reasoningEffort: 'REASONING_EFFORT_HIGH' },
  'kimi-k2.8': { upstreamModel: 'k28-agent-preview', scenario: 'SCENARIO_OK_COMPUTER', kimiplusId: 'ok-computer', agentMode: 'TYPE_NORMAL', reasoningEffort: 'REASONING_EFFORT_HIGH' },
};

const switchWords = ['search', 'silent_search', 'thinking', 'research', 'math'];
/** A 20-character xid names a legacy kimi+ agent (§2.3). */
const kimiPlusIdPattern = /^[0-9a-v]{20}$/;
/** The legacy k1 thinking agent (§2.4). */
const legacyThinkingAgentId = 'crm40ee9e5jvhsn7ptcg';

export interface ModelCatalog {
  resolve(publicId: string | undefined, flags?: ModelFlags): ResolvedModel;
  /** Kimi's own catalogue (spec §3.5, §9 D9) once fetched: its ids become valid model names. */
  useUpstream(models: CatalogModel[]): void;
  /** Public ids to list in /v1/models, merged with an upstream catalogue when one is given. */
  list(upstream?: CatalogModel[]): string[];
}

export function createModelCatalog(options: ModelCatalogOptions): ModelCatalog {
  const presets: Record<string, ModelPreset> = { ...agentPresets, ...options.presets };
  let upstreamPresets: Record<string, ModelPreset> = {};
  /** Every preset, configured ones over upstream ones, longest name first: rebuilt only when the catalogue changes. */
  let lookup = buildLookup();

  function buildLookup(): { all: Record<string, ModelPreset>; keys: { key: string; lower: string }[] } {
    // Configured presets win over the upstream catalogue, so an operator can correct a renamed scenario.
    const all = { ...upstreamPresets, ...presets };
    const keys = Object.keys(all)
      .sort((left, right) => right.length - left.length)
      .map((key) => ({ key, lower: key.toLowerCase() }));
    return { all, keys };
  }

  function useUpstream(models: CatalogModel[]): void {
    upstreamPresets = Object.fromEntries(
      models.map((model) => [
        model.id,
        {
          upstreamModel: model.id,
          scenario: model.scenario,
          kimiplusId: model.kimiplusId || undefined,
          agentMode: model.agentMode || undefined,
          reasoningEffort: model.defaultReasoningEffort,
        },
      ]),
    );
    lookup = buildLookup();
  }

  function resolve(publicId: string | undefined, flags: ModelFlags = {}): ResolvedModel {
    const requested = (publicId ?? '').trim() || 'kimi';
    const name = requested.toLowerCase();
    if (kimiPlusIdPattern.test(requested)) {
      return { choice: baseChoice(requested, { kimiplusId: requested, thinking: requested === legacyThinkingAgentId }), isFallback: false };
    }
    const presetKey = lookup.keys.find(({ lower }) => name === lower || name.startsWith(`${lower}-`))?.key;
    const preset = presetKey ? lookup.all[presetKey] : undefined;
    const silentSearch = name.includes('silent_search') || name.includes('silent-search');
    const thinking = preset?.thinking ?? (/thinking|reasoner|(^|[-_])k1([-_.]|$)/.test(name) || name === 'k1');
    const search = silentSearch || name.includes('search') || flags.useSearch === true || preset?.search === true;
    const research = name.includes('research');
    const math = /(^|[-_])math([-_]|$)/.test(name);
    const knownWords = preset !== undefined || name === 'kimi' || name.startsWith('kimi-') || name === 'k1' || switchWords.some((word) => name.includes(word));
    const choice = baseChoice(requested, {
      ...preset,
      thinking,
      search,
      silentSearch,
      research,
      math,
      reasoningEffort: preset?.reasoningEffort ?? (thinking ? options.thinkingEffort : undefined),
    });
    return { choice, isFallback: !knownWords };
  }

  function baseChoice(publicId: string, overrides: Partial<ModelChoice> & ModelPreset): ModelChoice {
    return {
      publicId,
      upstreamModel: overrides.upstreamModel ?? options.chatModel,
      scenario: overrides.scenario ?? options.chatScenario,
      kimiplusId: overrides.kimiplusId,
      agentMode: overrides.agentMode,
      reasoningEffort: overrides.reasoningEffort,
      thinking: overrides.thinking ?? false,
      search: overrides.search ?? false,
      silentSearch: overrides.silentSearch ?? false,
      research: overrides.research ?? false,
      math: overrides.math ?? false,
    };
  }

  function list(upstream: CatalogModel[] = []): string[] {
    const ids = new Set<string>([
      'kimi',
      'kimi-search',
      'kimi-silent_search',
      'kimi-thinking',
      'kimi-thinking-search',
      'kimi-research',
      'kimi-math',
      ...Object.keys(presets),
    ]);
    for (const model of upstream) {
      ids.add(model.id);
      if (model.thinking !== false) ids.add(`${model.id}-thinking`);
      ids.add(`${model.id}-search`);
    }
    return [...ids];
  }

  return { resolve, list, useUpstream };
}

/** Parses KIMI_MODEL_MAP (JSON object of public id → preset); throws with a readable message. */
export function parseModelMap(json: string | undefined): Record<string, ModelPreset> {
  if (!json) return {};
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error('KIMI_MODEL_MAP must be a JSON object of model id → {upstreamModel, scenario, kimiplusId, agentMode, reasoningEffort, thinking, search}.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('KIMI_MODEL_MAP must be a JSON object.');
  }
  return value as Record<string, ModelPreset>;
}

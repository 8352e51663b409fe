/**
 * @module upstream/connect/connect-chat-request
 * The body of `ChatService/Chat` for one user turn (protocol spec §3.5), built from a `KimiPrompt`.
 * Empty ids are omitted, never sent as "" (§10.4).
 */
import type { KimiPrompt } from '../dialect.ts';

export const defaultScenario = 'SCENARIO_CHAT';

export function buildChatRequest(prompt: KimiPrompt): Record<string, unknown> {
  const { model, conversation } = prompt;
  const scenario = model.scenario ?? defaultScenario;
  const message: Record<string, unknown> = {};
  if (conversation?.parentMessageId) message.parent_id = conversation.parentMessageId;
  message.role = 'user';
  // Text first, then files: the SPA's order (§3.5).
  message.blocks = [{ text: { content: prompt.text } }, ...prompt.files.map((file) => ({ file: { id: file.id } }))];
  message.scenario = scenario;

  const options: Record<string, unknown> = { thinking: model.thinking };
  if (model.reasoningEffort) options.reasoning_effort = reasoningEffortEnum(model.reasoningEffort);
  options.enable_plugin = true;
  if (model.upstreamModel) options.model = model.upstreamModel;

  const request: Record<string, unknown> = {};
  if (conversation?.id) request.chat_id = conversation.id;
  request.scenario = scenario;
  if (model.kimiplusId) request.kimiplus_id = model.kimiplusId;
  if (model.agentMode) request.agent_mode = model.agentMode;
  // Web search is declared only when wanted; the model still decides whether to call it (§3.7).
  if (model.search) request.tools = [{ type: 'TOOL_TYPE_SEARCH', search: {} }];
  request.message = message;
  request.options = options;
  return request;
}

/** Accepts `high` or `REASONING_EFFORT_HIGH`; the wire wants the enum name (§3.5). */
export function reasoningEffortEnum(effort: string): string {
  const upper = effort.trim().toUpperCase();
  return upper.startsWith('REASONING_EFFORT_') ? upper : `REASONING_EFFORT_${upper}`;
}

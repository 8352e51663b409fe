/**
 * @module simulator/tool-replies
 * A model that follows the gateway's emulated tool calling (issue 9). It reads the tool instructions from the
 * prompt text itself (the simulator imports nothing from src/): a `<tools>` block of one JSON tool per line
 * and the `<tool_call name="TOOL_NAME">` form. Without tool results in the prompt it answers with a sentence
 * and then calls (every tool the question names, or the first; one when parallel calls are forbidden; the
 * forced one when a tool must be called); with results it answers from them in prose. The scenarios
 * `tools-malformed`, `tools-unknown-tool` and `tools-ignored` misbehave instead. Frames split the reply at
 * 3-10 code points (reply-text.ts), so calls are cut inside `<tool_call` and `</tool_call>`.
 */
import type { SimulatedReply } from './reply-text.ts';

export interface OfferedTool {
  name: string;
  parameters: Record<string, unknown>;
}

export interface ToolPrompt {
  /** The prompt before the tool instructions (the conversation). */
  question: string;
  tools: OfferedTool[];
  /** `You must call the tool "X"`. */
  forcedTool?: string;
  allowsParallel: boolean;
  /** The prompt is the gateway's repair request. */
  isRepair: boolean;
  /** Tool results (`tool:` lines) in the conversation. */
  results: string[];
}

const TOOL_FORM = '<tool_call name="TOOL_NAME">';
const TOOLS_BLOCK = /<tools>\n([\s\S]*?)\n<\/tools>/;

/** The tool instructions in a prompt, or undefined when it offers no tools in the xml-tag form. */
export function readToolPrompt(text: string): ToolPrompt | undefined {
  const block = TOOLS_BLOCK.exec(text);
  if (!block || !text.includes(TOOL_FORM)) return undefined;
  const tools: OfferedTool[] = [];
  for (const line of block[1].split('\n')) {
    try {
      const tool = JSON.parse(line) as { name?: unknown; parameters?: unknown };
      if (typeof tool.name === 'string') tools.push({ name: tool.name, parameters: isObject(tool.parameters) ? tool.parameters : {} });
    } catch {
      // A line that is not JSON is not a tool.
    }
  }
  const instructionsStart = text.lastIndexOf('## Tools', block.index);
  const question = instructionsStart >= 0 ? text.slice(0, instructionsStart) : text.slice(0, block.index);
  return {
    question,
    tools,
    forcedTool: /You must call the tool "([^"]+)"/.exec(text)?.[1],
    allowsParallel: !text.includes('Call at most one tool'),
    isRepair: text.startsWith('Your previous answer could not be used'),
    results: question.split('\n').filter((line) => line.startsWith('tool:')),
  };
}

/** Replaces the reply when the prompt offers tools; otherwise returns it unchanged. */
export function withToolReply(reply: SimulatedReply, userText: string, scenario: string): SimulatedReply {
  const prompt = readToolPrompt(userText);
  if (!prompt || prompt.tools.length === 0 || scenario === 'tools-ignored') return reply;
  const text = toolReplyText(prompt, scenario);
  return { text, plainText: text, sources: [] };
}

export function toolReplyText(prompt: ToolPrompt, scenario: string): string {
  if (prompt.results.length > 0 && !prompt.isRepair) {
    return `Simulated answer from ${prompt.results.length} tool result(s) 模拟工具结果 🧰: ${prompt.results.map((line) => line.slice(5).trim()).join(' | ').slice(0, 300)}`;
  }
  const chosen = chooseTools(prompt);
  const preface = prompt.isRepair ? '' : `I will use ${chosen.map((tool) => tool.name).join(' and ')} 我来调用工具 🛠️.\n`;
  if (scenario === 'tools-malformed') return `${preface}<tool_call name="${chosen[0].name}">{"broken": tru</tool_call>`;
  if (scenario === 'tools-unknown-tool') return `${preface}<tool_call name="no_such_tool">{}</tool_call>`;
  return preface + chosen.map((tool) => `<tool_call name="${tool.name}">${JSON.stringify(sampleArguments(tool.parameters))}</tool_call>`).join('\n');
}

/**
 * The forced tool; else every tool the question names (in offer order); else the first tool. A repair prompt
 * lists all tools in its problem text, so there only quoted names (the broken calls) count.
 */
export function chooseTools(prompt: ToolPrompt): OfferedTool[] {
  const forced = prompt.tools.find((tool) => tool.name === prompt.forcedTool);
  if (forced) return [forced];
  const firstLine = prompt.question.split('\n')[0];
  const named = prompt.tools.filter((tool) => (prompt.isRepair ? firstLine.includes(`"${tool.name}"`) : prompt.question.includes(tool.name)));
  const chosen = named.length > 0 ? named : [prompt.tools[0]];
  return prompt.allowsParallel ? chosen : chosen.slice(0, 1);
}

/** Deterministic arguments that satisfy a simple schema: required and listed properties, by type. */
export function sampleArguments(schema: Record<string, unknown>): Record<string, unknown> {
  const properties = isObject(schema.properties) ? schema.properties : {};
  const result: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(properties)) result[name] = sampleValue(name, isObject(property) ? property : {});
  return result;
}

function sampleValue(name: string, schema: Record<string, unknown>): unknown {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if ('const' in schema) return schema.const;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === 'integer' || type === 'number') return typeof schema.minimum === 'number' ? schema.minimum : 1;
  if (type === 'boolean') return true;
  if (type === 'array') return [];
  if (type === 'object') return sampleArguments(schema);
  if (type === 'null') return null;
  return `sim-${name}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

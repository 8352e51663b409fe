/**
 * @module chat/tools/tool-grammar
 * The one module that knows how tool calls look in Kimi's text (protocol spec §9 D11: sources disagree on
 * which form Kimi follows, so the form is swappable). A grammar renders the tool list and rules into the
 * instruction text, renders repair requests and earlier calls, and parses answers incrementally.
 *
 * Default grammar, `xml-tag`: `<tool_call name="get_weather">{"city":"Paris"}</tool_call>`. Why this form:
 * - the opener `<tool_call` is rare in prose and has no prefix in common with ordinary text, so the
 *   hold-back (block-scanner.ts) is at most ten characters and plain answers stream without delay;
 * - the name sits in the tag, so a call is recognisable before its arguments end, and the closer
 *   `</tool_call>` cannot occur inside a JSON string without being escaped in practice;
 * - it is the shape peers report Kimi following (Chat2API#26, #100), whereas a fenced-JSON pseudo-call was
 *   reported refused (aurora docs/KIMI.md §6.1); the `fenced-json` variant stays available for measurement.
 */
import { createBlockScanner, type BlockSyntax } from './block-scanner.ts';
import type { ToolChoice, ToolDefinition } from './tool-events.ts';
import { isPlainObject } from '../../plain-object.ts';

/** One unit of a parsed answer. `arguments` is the parsed JSON object (not yet checked against a schema). */
export type GrammarToken =
  | { type: 'text'; text: string }
  | { type: 'call'; name: string; arguments: Record<string, unknown>; raw: string }
  | { type: 'malformed-call'; reason: string; name?: string; raw: string };

export interface ToolCallParser {
  push(text: string): GrammarToken[];
  end(): GrammarToken[];
}

export interface ToolPromptInput {
  tools: readonly ToolDefinition[];
  choice: ToolChoice;
  parallelToolCalls: boolean;
}

export interface ToolGrammar {
  readonly name: string;
  /** Instruction text for ChatRequest.instructions ('' for tool_choice none). */
  renderInstructions(input: ToolPromptInput): string;
  /** Asks for corrected calls after `problems` (one sentence each); repeats the instructions. */
  renderRepair(problems: readonly string[], input: ToolPromptInput): string;
  /** An earlier call as the model would have written it (for the history the client sends back). */
  formatCall(call: { id: string; name: string; arguments: string }): string;
  createParser(): ToolCallParser;
}

const MAX_HEADER_CHARS = 300;
/** Arguments may carry whole files (agents writing code); beyond this the call is treated as runaway. */
const MAX_ARGUMENT_CHARS = 1_000_000;

export const xmlTagGrammar: ToolGrammar = {
  name: 'xml-tag',
  renderInstructions: (input) =>
    renderInstructions(input, {
      example: '<tool_call name="TOOL_NAME">{"ARGUMENT": "VALUE"}</tool_call>',
      blockName: '<tool_call> block',
    }),
  renderRepair: (problems, input) => renderRepair(problems, input, xmlTagGrammar),
  formatCall: (call) => `<tool_call name="${escapeAttribute(call.name)}" id="${escapeAttribute(call.id)}">${call.arguments}</tool_call>`,
  createParser: () =>
    createGrammarParser(
      { open: '<tool_call', isOpenBoundary: (character) => /[\s>]/.test(character), headerEnd: '>', close: '</tool_call>', maxHeaderChars: MAX_HEADER_CHARS, maxBodyChars: MAX_ARGUMENT_CHARS },
      (header) => attributeOf(header, 'name'),
    ),
};

/** The variant to measure against: a fenced block holding `{"name": ..., "arguments": {...}}`. */
export const fencedJsonGrammar: ToolGrammar = {
  name: 'fenced-json',
  renderInstructions: (input) =>
    renderInstructions(input, {
      example: '```tool_call\n{"name": "TOOL_NAME", "arguments": {"ARGUMENT": "VALUE"}}\n```',
      blockName: '```tool_call block',
    }),
  renderRepair: (problems, input) => renderRepair(problems, input, fencedJsonGrammar),
  formatCall: (call) => `\`\`\`tool_call\n{"name": ${JSON.stringify(call.name)}, "id": ${JSON.stringify(call.id)}, "arguments": ${call.arguments}}\n\`\`\``,
  createParser: () =>
    createGrammarParser(
      { open: '```tool_call', isOpenBoundary: (character) => /\s/.test(character), headerEnd: '\n', close: '```', maxHeaderChars: MAX_HEADER_CHARS, maxBodyChars: MAX_ARGUMENT_CHARS },
      () => undefined,
    ),
};

export const toolGrammars: Record<string, ToolGrammar> = { 'xml-tag': xmlTagGrammar, 'fenced-json': fencedJsonGrammar };

function createGrammarParser(syntax: BlockSyntax, nameFromHeader: (header: string) => string | undefined): ToolCallParser {
  const scanner = createBlockScanner(syntax);
  const toGrammarTokens = (tokens: ReturnType<typeof scanner.push>): GrammarToken[] =>
    tokens.map((token) => {
      if (token.type === 'text') return token;
      if (token.type === 'broken-block') return { type: 'malformed-call', reason: token.reason, raw: token.raw };
      return interpretCall(nameFromHeader(token.header), token.body, token.raw);
    });
  return { push: (text) => toGrammarTokens(scanner.push(text)), end: () => toGrammarTokens(scanner.end()) };
}

/**
 * A block's name and arguments. Tolerant where intent is unambiguous: a fenced or padded body, an empty body
 * for a call without arguments, and the Hermes-style body `{"name": ..., "arguments": ...}`.
 */
export function interpretCall(headerName: string | undefined, body: string, raw: string): GrammarToken {
  const text = body.trim().replace(/^```(?:json)?[ \t]*\r?\n?([\s\S]*?)\r?\n?```$/, '$1').trim();
  let value: unknown = {};
  if (text) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { type: 'malformed-call', name: headerName, reason: `the arguments are not valid JSON (${(error as Error).message})`, raw };
    }
  }
  let name = headerName;
  if (!name && isPlainObject(value) && typeof value.name === 'string') {
    name = value.name;
    value = value.arguments ?? value.parameters ?? {};
    if (typeof value === 'string') {
      try {
        value = value.trim() ? JSON.parse(value) : {};
      } catch (error) {
        return { type: 'malformed-call', name, reason: `the arguments are not valid JSON (${(error as Error).message})`, raw };
      }
    }
  }
  if (!name) return { type: 'malformed-call', reason: 'the call names no tool', raw };
  if (!isPlainObject(value)) return { type: 'malformed-call', name, reason: 'the arguments are not a JSON object', raw };
  return { type: 'call', name, arguments: value, raw };
}

function renderInstructions(input: ToolPromptInput, form: { example: string; blockName: string }): string {
  if (input.choice.kind === 'none' || input.tools.length === 0) return '';
  const toolLines = input.tools.map((tool) => JSON.stringify({ name: tool.name, description: tool.description ?? '', parameters: tool.parameters }));
  return [
    '## Tools',
    'You can call the tools listed below. Each line is one tool as JSON: its name, what it does, and the JSON Schema of its arguments.',
    '<tools>',
    ...toolLines,
    '</tools>',
    '',
    "To call a tool, write a block in exactly this form, with the arguments as one JSON object that matches the tool's schema:",
    form.example,
    '',
    'Rules:',
    `- ${choiceRule(input.choice, form.blockName)}`,
    `- ${input.parallelToolCalls ? `When several independent calls are needed, write all their blocks one after another in this answer.` : 'Call at most one tool in this answer.'}`,
    `- Write each ${form.blockName} as plain text: not inside a code block, not quoted, not explained.`,
    '- After your last tool call, stop writing: the results come back in the next message, and you answer from them.',
    '- Earlier calls appear in the conversation in the same form; "tool:" lines are their results.',
  ].join('\n');
}

function choiceRule(choice: ToolChoice, blockName: string): string {
  if (choice.kind === 'required') return 'You must call at least one tool in this answer.';
  if (choice.kind === 'function') return `You must call the tool "${choice.name}" in this answer.`;
  return `Call a tool only when you need one to answer; otherwise answer normally and write no ${blockName}.`;
}

function renderRepair(problems: readonly string[], input: ToolPromptInput, grammar: ToolGrammar): string {
  return [
    `Your previous answer could not be used: ${problems.join('; ')}.`,
    'Write the corrected tool call block(s) now, exactly in the form below, and nothing else.',
    '',
    grammar.renderInstructions({ ...input, choice: input.choice.kind === 'auto' ? { kind: 'required' } : input.choice }),
  ].join('\n');
}

function attributeOf(header: string, attribute: string): string | undefined {
  const pattern = new RegExp(`(?:^|\\s)${attribute}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s"'>]+))`);
  const match = pattern.exec(header);
  const value = match ? (match[1] ?? match[2] ?? match[3]) : undefined;
  return value?.trim() || undefined;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
}

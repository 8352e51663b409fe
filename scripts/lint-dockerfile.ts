/**
 * @module scripts/lint-dockerfile
 * A small Dockerfile checker for the rules this project cares about (issue 6), standing in for
 * hadolint, which neither Debian nor npm ships (npm's `hadolint` package only wraps a binary it
 * does not bring). Usage: `node scripts/lint-dockerfile.ts [Dockerfile]`; exits 1 on any finding.
 *
 * Rules: pinned-base-image (an explicit major-version tag or a digest), non-root-user (the final
 * stage switches away from root), healthcheck (the final stage has one), no-add-url (ADD never
 * fetches from a URL), npm-ci (installs are `npm ci`, never `npm install`), exec-form (CMD and
 * ENTRYPOINT are JSON arrays, so signals reach node instead of a shell).
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface DockerInstruction {
  keyword: string;
  args: string;
  /** 1-based line where the instruction starts. */
  line: number;
}

export interface LintFinding {
  rule: 'pinned-base-image' | 'non-root-user' | 'healthcheck' | 'no-add-url' | 'npm-ci' | 'exec-form' | 'syntax';
  line: number;
  message: string;
}

/** Splits a Dockerfile into instructions, joining `\` continuations and dropping comments. */
export function parseDockerfile(text: string): DockerInstruction[] {
  const instructions: DockerInstruction[] = [];
  let pending: { start: number; parts: string[] } | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comment lines are removed even inside a continuation, as Docker does.
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return;
    const continues = trimmed.endsWith('\\');
    const content = continues ? trimmed.slice(0, -1).trim() : trimmed;
    pending ??= { start: index + 1, parts: [] };
    if (content !== '') pending.parts.push(content);
    if (continues && index < lines.length - 1) return;
    const joined = pending.parts.join(' ');
    const match = /^(\S+)\s*(.*)$/s.exec(joined);
    if (match) instructions.push({ keyword: match[1].toUpperCase(), args: match[2], line: pending.start });
    pending = undefined;
  });
  return instructions;
}

/** Runs every rule; an empty array means the Dockerfile passes. */
export function lintDockerfile(text: string): LintFinding[] {
  const instructions = parseDockerfile(text);
  const findings: LintFinding[] = [];
  const fromIndexes = instructions.flatMap((instruction, index) => (instruction.keyword === 'FROM' ? [index] : []));
  if (fromIndexes.length === 0) {
    return [{ rule: 'syntax', line: 1, message: 'no FROM instruction' }];
  }
  findings.push(...checkBaseImages(instructions));
  const finalStage = instructions.slice(fromIndexes[fromIndexes.length - 1]);
  findings.push(...checkFinalStage(finalStage));
  for (const instruction of instructions) findings.push(...checkInstruction(instruction));
  return findings.sort((a, b) => a.line - b.line);
}

function checkBaseImages(instructions: DockerInstruction[]): LintFinding[] {
  const findings: LintFinding[] = [];
  const stageNames = new Set<string>();
  const globalArgs = new Map<string, string>();
  let seenFrom = false;
  for (const instruction of instructions) {
    // ARGs before the first FROM may parameterise image references; resolve their defaults.
    if (instruction.keyword === 'ARG' && !seenFrom) {
      const [name, value = ''] = instruction.args.split('=', 2);
      globalArgs.set(name.trim(), value.trim().replace(/^["']|["']$/g, ''));
    }
    if (instruction.keyword !== 'FROM') continue;
    seenFrom = true;
    const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
    const image = words[0]?.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs.get(name) ?? `$${name}`) ?? '';
    if (words[1]?.toLowerCase() === 'as' && words[2]) stageNames.add(words[2].toLowerCase());
    if (image === '' || image.toLowerCase() === 'scratch' || stageNames.has(image.toLowerCase())) continue;
    const problem = baseImageProblem(image);
    if (problem) findings.push({ rule: 'pinned-base-image', line: instruction.line, message: `${image}: ${problem}` });
  }
  return findings;
}

/** Why an image reference is not pinned to a major version, or undefined when it is. */
export function baseImageProblem(image: string): string | undefined {
  if (image.includes('$')) return 'the tag depends on a variable without a default';
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return undefined;
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  if (colon === -1) return 'no tag, which means latest';
  const tag = image.slice(colon + 1);
  if (tag === 'latest') return 'the latest tag moves between majors';
  if (!/^v?\d/.test(tag)) return `tag "${tag}" does not start with a major version`;
  return undefined;
}

function checkFinalStage(stage: DockerInstruction[]): LintFinding[] {
  const findings: LintFinding[] = [];
  const from = stage[0];
  const users = stage.filter((instruction) => instruction.keyword === 'USER');
  const lastUser = users[users.length - 1];
  if (!lastUser) {
    findings.push({ rule: 'non-root-user', line: from.line, message: 'the final stage never sets USER, so it runs as root' });
  } else if (/^(root|0)(:.*)?$/.test(lastUser.args.trim())) {
    findings.push({ rule: 'non-root-user', line: lastUser.line, message: 'the final stage runs as root' });
  }
  const healthchecks = stage.filter((instruction) => instruction.keyword === 'HEALTHCHECK');
  const lastHealthcheck = healthchecks[healthchecks.length - 1];
  if (!lastHealthcheck) {
    findings.push({ rule: 'healthcheck', line: from.line, message: 'the final stage has no HEALTHCHECK' });
  } else if (/^none$/i.test(lastHealthcheck.args.trim())) {
    findings.push({ rule: 'healthcheck', line: lastHealthcheck.line, message: 'HEALTHCHECK NONE disables the check' });
  }
  return findings;
}

function checkInstruction(instruction: DockerInstruction): LintFinding[] {
  const { keyword, args, line } = instruction;
  if (keyword === 'ADD' && /(^|\s|")(https?:\/\/|git@)/i.test(args)) {
    return [{ rule: 'no-add-url', line, message: 'ADD from a URL: fetch in a RUN with a checksum, or COPY a vendored file' }];
  }
  if (keyword === 'RUN' && /\bnpm\s+(install|i|add)(\s|$)/.test(args)) {
    return [{ rule: 'npm-ci', line, message: 'use `npm ci` so the image gets exactly the locked versions' }];
  }
  if ((keyword === 'CMD' || keyword === 'ENTRYPOINT') && !isExecForm(args)) {
    return [{ rule: 'exec-form', line, message: `${keyword} in shell form runs under /bin/sh, which does not forward SIGTERM` }];
  }
  return [];
}

function isExecForm(args: string): boolean {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.length > 0 && parsed.every((part) => typeof part === 'string');
  } catch {
    return false;
  }
}

function main(path: string): number {
  const findings = lintDockerfile(readFileSync(path, 'utf8'));
  for (const finding of findings) console.error(`${path}:${finding.line} ${finding.rule}: ${finding.message}`);
  if (findings.length === 0) console.log(`${path}: ok`);
  return findings.length === 0 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = main(process.argv[2] ?? 'Dockerfile');
}

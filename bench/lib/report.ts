/**
 * @module bench/lib/report
 * The benchmark's result model and its rendering: one section per benchmark (a table of measurements) and
 * one check per issue-7 target (measured value, target, met or missed).
 */

export interface Check {
  id: string;
  metric: string;
  measured: string;
  target: string;
  ok: boolean;
}

export interface Section {
  id: string;
  title: string;
  header: string[];
  rows: string[][];
  checks: Check[];
  notes: string[];
}

/** A Markdown table whose columns line up in a terminal too. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
  return [line(header), `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export function renderSection(section: Section): string {
  const parts = [`### ${section.id} ${section.title}`, '', renderTable(section.header, section.rows)];
  if (section.notes.length > 0) parts.push('', ...section.notes.map((note) => `- ${note}`));
  return parts.join('\n');
}

export function renderChecks(checks: Check[]): string {
  return renderTable(
    ['', 'metric', 'measured', 'target', 'result'],
    checks.map((check) => [check.id, check.metric, check.measured, check.target, check.ok ? 'met' : 'MISSED']),
  );
}

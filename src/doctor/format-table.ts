/**
 * @module doctor/format-table
 * The doctor's table in the contract's format (`step | ok or FAIL | ms | detail`): host steps name the host,
 * account steps the account id (a hash, never the token). Columns are padded so the table reads in a terminal.
 */
import type { DoctorReport, DoctorRow } from './doctor-types.ts';

export function formatDoctorTable(report: DoctorReport): string {
  const lines = report.rows.map((row) => [stepLabel(row), row.result, String(row.ms), oneLine(row.detail)]);
  const header = ['step', 'result', 'ms', 'detail'];
  const widths = [0, 1, 2].map((column) => Math.max(header[column].length, ...lines.map((line) => line[column].length)));
  const render = (cells: string[]) => cells.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]) : cell)).join(' | ').trimEnd();
  const failed = report.rows.filter((row) => row.result === 'FAIL').length;
  const summary = failed === 0
    ? `All ${report.rows.length} steps passed.`
    : `${failed} of ${report.rows.length} steps FAILED. Attach the --record fixtures to a bug report; they hold no token.`;
  const drift = report.drift.length > 0 ? [`Upstream sent ${report.drift.length} unknown thing(s): ${report.drift.join(', ')}`] : [];
  return [render(header), ...lines.map(render), '', summary, ...drift].join('\n');
}

function stepLabel(row: DoctorRow): string {
  return `${row.step} ${row.target}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Test support: small, structurally valid sample files built from scratch (a one-page PDF with a correct
 * xref table, an RGB PNG with real CRCs and a zlib-compressed IDAT, UTF-8 text, an ELF header), plus the
 * digest helpers e2e tests use to prove the bytes reached the upstream intact.
 */
import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';

export interface SampleFile {
  name: string;
  mediaType: string;
  bytes: Buffer;
}

/** A PDF 1.4 with one page that prints `text` in Helvetica; every xref offset is computed, not guessed. */
export function buildPdf(text: string): Buffer {
  const escaped = text.replace(/[\\()]/g, (character) => `\\${character}`);
  const content = `BT /F1 12 Tf 20 50 Td (${escaped}) Tj ET\n`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 240 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}endstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let body = '%PDF-1.4\n%\u00e2\u00e3\u00cf\u00d3\n';
  const offsets: number[] = [];
  objects.forEach((object, index) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${index + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xrefOffset = Buffer.byteLength(body, 'latin1');
  // Each xref entry is exactly 20 bytes: 10-digit offset, space, 5-digit generation, space, flag, space, LF.
  const entries = offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${entries}`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xrefOffset}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** A width×height 8-bit RGB PNG: signature, IHDR, one zlib IDAT (filter byte 0 per row), IEND. */
export function buildPng(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, adaptive filtering, no interlace
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y += 1) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x += 1) row.set([(x * 97) & 0xff, (y * 53) & 0xff, ((x + y) * 31) & 0xff], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.concat(rows))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length, 0);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(typed), 0);
  return Buffer.concat([length, typed, checksum]);
}

/** The start of a 64-bit little-endian ELF executable: magic-byte detection sees an executable. */
export function buildElf(): Buffer {
  const header = Buffer.alloc(64);
  header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  header.writeUInt16LE(2, 16); // ET_EXEC
  header.writeUInt16LE(0x3e, 18); // x86-64
  return header;
}

export const samples = {
  pdf: { name: 'quarterly-report.pdf', mediaType: 'application/pdf', bytes: buildPdf('Kimi attachment test: revenue 42') },
  text: { name: 'notes.txt', mediaType: 'text/plain; charset=utf-8', bytes: Buffer.from('Plain notes 笔记 ✓\nline two\n', 'utf8') },
  png: { name: 'chart.png', mediaType: 'image/png', bytes: buildPng(4, 3) },
  elf: { name: 'program.bin', mediaType: 'application/octet-stream', bytes: buildElf() },
} satisfies Record<string, SampleFile>;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function dataUrl(file: SampleFile): string {
  return `data:${file.mediaType.split(';')[0]};base64,${file.bytes.toString('base64')}`;
}

/** The line the simulator's reply writes for each attached file (simulator/reply-text.ts). */
export function replyFileLine(name: string, bytes: Uint8Array): string {
  return `File: ${name} (${bytes.byteLength} bytes, sha256 ${sha256Hex(bytes).slice(0, 12)})`;
}

/** The same line when the gateway chose the name (`attachment-N.ext`): matches any N. */
export function replyFileLinePattern(extension: string, bytes: Uint8Array): RegExp {
  return new RegExp(`File: attachment-\\d+\\.${extension} \\(${bytes.byteLength} bytes, sha256 ${sha256Hex(bytes).slice(0, 12)}\\)`);
}

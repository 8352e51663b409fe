// Temporary attachment files (issue 4): the start-up sweep removes what a crashed process left, nothing else.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sweepOrphanedTempFiles } from './spool-file.ts';

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'spool-sweep-'));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

test('deletes our temporary files older than the cut-off; keeps young ones, other names and links', async () => {
  const hex = (digit: string) => digit.repeat(24);
  const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60_000);
  const files = {
    oldSpool: `kfa-spool-${hex('a')}`,
    oldAttachment: `kimi-attachment-${hex('b')}`,
    youngSpool: `kfa-spool-${hex('c')}`,
    otherName: `kfa-spool-notours`,
    otherApp: `something-${hex('d')}`,
  };
  for (const name of Object.values(files)) await writeFile(join(directory, name), 'x');
  for (const name of [files.oldSpool, files.oldAttachment, files.otherName, files.otherApp]) await utimes(join(directory, name), twoHoursAgo, twoHoursAgo);
  // A link with our name pointing elsewhere is never followed or removed.
  const target = join(directory, files.otherApp);
  const link = `kfa-spool-${hex('e')}`;
  await symlink(target, join(directory, link));

  assert.equal(await sweepOrphanedTempFiles({ directory }), 2);
  assert.deepEqual((await readdir(directory)).sort(), [files.otherApp, files.otherName, files.youngSpool, link].sort());
});

test('a missing folder is nothing to sweep, not an error', async () => {
  assert.equal(await sweepOrphanedTempFiles({ directory: join(directory, 'absent') }), 0);
});

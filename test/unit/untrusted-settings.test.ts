/**
 * Settings from a workspace are untrusted: the output folder and the fairness gate's limits are
 * restricted configurations (VS Code ignores a workspace's values until it is trusted), and the
 * output folder is kept inside the workspace folder whatever the setting says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { resolveOutputFolder } from '../../src/core/output-folder';
import { repoRoot } from '../helpers';

test('fairPrune.outputFolder and every fairPrune.gate.* setting are restricted in untrusted workspaces', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const restricted: string[] = manifest.capabilities.untrustedWorkspaces.restrictedConfigurations;
  const settings = Object.keys(manifest.contributes.configuration.properties);
  const needed = settings.filter((k) => k === 'fairPrune.outputFolder' || k.startsWith('fairPrune.gate.'));
  assert.ok(needed.length >= 5, 'the gate settings exist');
  assert.deepEqual(
    needed.filter((k) => !restricted.includes(k)),
    [],
    'each is listed in restrictedConfigurations',
  );
  assert.deepEqual(
    restricted.filter((k) => !settings.includes(k)),
    [],
    'only real settings are listed',
  );
  // The question before a commit can be switched off only in user settings, never by a workspace.
  assert.equal(manifest.contributes.configuration.properties['fairPrune.commit.confirm'].scope, 'application');
  assert.ok(restricted.includes('fairPrune.commit.confirm'));
});

test('the output folder stays inside the workspace folder', () => {
  const root = path.resolve('/work/project');
  assert.deepEqual(resolveOutputFolder(root, '.fairprune'), { dir: path.join(root, '.fairprune') });
  assert.deepEqual(resolveOutputFolder(root, 'out/fp'), { dir: path.join(root, 'out', 'fp') });
  assert.deepEqual(resolveOutputFolder(root, ''), { dir: path.join(root, '.fairprune') });
  for (const bad of ['/etc', '../elsewhere', 'a/../../b', '.', 'C:\\temp']) {
    const r = resolveOutputFolder(root, bad);
    assert.equal(r.dir, path.join(root, '.fairprune'), bad);
    assert.match(
      r.problem ?? '',
      /leads outside the workspace folder .*; sessions are kept in \.fairprune inside it/,
      bad,
    );
  }
});

/** The extension manifest (package.json) follows VS Code's conventions, and the walkthrough's buttons and images exist. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers';

interface Manifest {
  icon?: string;
  repository?: { url?: string };
  activationEvents: string[];
  contributes: {
    commands: { command: string }[];
    configuration: { properties: Record<string, { scope?: string }> };
    menus: Record<string, { command: string; when?: string; group?: string }[]>;
    keybindings: { command: string; key: string; mac?: string; when?: string }[];
    viewsWelcome: { view: string; contents: string }[];
    walkthroughs: {
      id: string;
      steps: { id: string; title: string; description: string; media: { image?: string; altText?: string } }[];
    }[];
  };
}

const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Manifest;

test('activation searches no workspace, every setting has its scope, icon and repository are set', () => {
  assert.deepEqual(
    manifest.activationEvents.filter((e) => e.startsWith('workspaceContains')),
    [],
  );
  const props = manifest.contributes.configuration.properties;
  assert.deepEqual(
    Object.keys(props).filter((k) => !props[k].scope),
    [],
    'settings without a scope',
  );
  assert.equal(props['fairPrune.backend'].scope, 'machine-overridable');
  assert.equal(props['fairPrune.workers'].scope, 'machine-overridable');
  assert.equal(props['fairPrune.outputFolder'].scope, 'resource');
  for (const k of Object.keys(props).filter((k) => k.startsWith('fairPrune.gate.')))
    assert.equal(props[k].scope, 'resource', k);
  assert.ok(manifest.icon && fs.existsSync(path.join(repoRoot, manifest.icon)), 'the icon file exists');
  assert.ok(manifest.repository?.url, 'a repository, so vsce package needs no --allow-missing-repository');
});

test("Cancel shows only while a session runs; Try the Demo is a button in the Sessions view's welcome text", () => {
  const menus = manifest.contributes.menus;
  const cancel = Object.values(menus)
    .flat()
    .filter((m) => m.command === 'fairPrune.cancel');
  for (const m of cancel) assert.match(m.when ?? '', /fairPrune\.sessionRunning/);
  // In the palette, in the Sessions view's title bar, and inline on the running session's item.
  assert.ok(menus.commandPalette.some((m) => m.command === 'fairPrune.cancel'));
  assert.ok(
    menus['view/title'].some((m) => m.command === 'fairPrune.cancel' && /view == fairPrune\.sessions/.test(m.when!)),
  );
  assert.ok(
    menus['view/item/context'].some(
      (m) =>
        m.command === 'fairPrune.cancel' && m.group === 'inline' && /viewItem == fairPrune\.running\b/.test(m.when!),
    ),
  );
  // Its keybinding works only while a session runs.
  const keys = manifest.contributes.keybindings.filter((k) => k.command === 'fairPrune.cancel');
  assert.equal(keys.length, 1);
  assert.equal(keys[0].when, 'fairPrune.sessionRunning');
  assert.ok(keys[0].key && keys[0].mac);
  const welcome = manifest.contributes.viewsWelcome.find((w) => w.view === 'fairPrune.sessions')!;
  assert.match(welcome.contents, /\[Try the Demo\]\(command:fairPrune\.tryDemo\)/);
});

test('the walkthrough: five steps, each with a command button of a real command and an image that exists', () => {
  const [walkthrough] = manifest.contributes.walkthroughs;
  assert.equal(walkthrough.steps.length, 5);
  const commands = new Set([...manifest.contributes.commands.map((c) => c.command), 'workbench.action.openSettings']);
  for (const step of walkthrough.steps) {
    const links = [...step.description.matchAll(/\]\(command:([\w.]+)/g)].map((m) => m[1]);
    assert.equal(links.length, 1, `${step.id} has one button`);
    assert.ok(commands.has(links[0]), `${step.id}: ${links[0]} is a command`);
    assert.ok(
      step.media.image && fs.existsSync(path.join(repoRoot, step.media.image)),
      `${step.id}: ${step.media.image} exists`,
    );
    assert.ok(step.media.altText, `${step.id} describes its image`);
  }
  assert.match(walkthrough.steps[0].description, /command:fairPrune\.tryDemo/);
});

/**
 * `fairprune help data` prints the data contract, docs/data-contract.md — the same text the README
 * links to, so the rules a user reads and the rules the engine documents cannot drift apart.
 */
import * as fs from 'fs';
import * as path from 'path';

export function dataContractHelp(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const file = path.join(dir, 'docs', 'data-contract.md');
    if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8');
    dir = path.dirname(dir);
  }
  return 'The data contract is in docs/data-contract.md of the Fair Prune repository.';
}

#!/usr/bin/env node
/**
 * Generates results.schema.json (JSON Schema, draft 2020-12) from the TypeScript types of
 * src/protocol/results.ts, so the file the extension validates every results.json against cannot
 * drift from the types the engine writes. `node scripts/results-schema.cjs` rewrites the file;
 * test/unit/results-schema.test.ts checks that the committed file matches what this makes.
 *
 * The types say what each field holds; a few fields are also paths or names that a crafted file
 * could abuse, and get a pattern here (PATTERNS) so the schema says what a safe value looks like.
 */
const path = require('path');
const fs = require('fs');
const ts = require('typescript');

const ROOT = path.join(__dirname, '..');
const SOURCE = path.join(ROOT, 'src', 'protocol', 'results.ts');
const OUT = path.join(ROOT, 'results.schema.json');

/** Point and session ids: letters, digits, `.`, `_`, `-`; folders of a point: `points/<id>[/shrunk]`. */
const SAFE_ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$';
const PATTERNS = {
  'SessionResults.sessionId': SAFE_ID,
  'PrunedPoint.id': SAFE_ID,
  'PrunedPoint.modelDir': '^points[/\\\\][A-Za-z0-9][A-Za-z0-9._-]{0,99}$',
  'StructureRecord.modelDir': '^points[/\\\\][A-Za-z0-9][A-Za-z0-9._-]{0,99}[/\\\\]shrunk$',
};

/**
 * Fields the type declares but a results.json may lack: a running session's file is written before the
 * dense model has been evaluated (session.ts starts with `dense: undefined`).
 */
const OPTIONAL = new Set(['SessionResults.dense']);

function makeResultsSchema() {
  const program = ts.createProgram([SOURCE], { strict: true, target: ts.ScriptTarget.ES2022 });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(SOURCE);
  const named = new Map();
  ts.forEachChild(file, (node) => {
    if ((ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) && node.name)
      named.set(node.name.text, node);
  });
  const defs = {};

  const nameOf = (type) => {
    const sym = type.aliasSymbol ?? type.getSymbol();
    if (!sym) return undefined;
    const decl = sym.declarations?.[0];
    if (!decl || decl.getSourceFile() !== file) return undefined;
    if (!ts.isInterfaceDeclaration(decl)) return undefined;
    return sym.getName();
  };

  const toSchema = (type, where) => {
    if (type.flags & ts.TypeFlags.Any || type.flags & ts.TypeFlags.Unknown) return {};
    if (type.isUnion()) {
      const parts = type.types.filter((t) => !(t.flags & ts.TypeFlags.Undefined));
      const literals = parts.filter((t) => t.isStringLiteral() || t.isNumberLiteral());
      const bools = parts.filter((t) => t.flags & ts.TypeFlags.BooleanLiteral);
      if (bools.length === 2 && parts.length === 2) return { type: 'boolean' };
      if (literals.length === parts.length) return { enum: literals.map((t) => t.value) };
      if (parts.length === 1) return toSchema(parts[0], where);
      const schemas = [];
      if (bools.length === 2) schemas.push({ type: 'boolean' });
      if (literals.length) schemas.push({ enum: literals.map((t) => t.value) });
      for (const t of parts) if (!literals.includes(t) && !bools.includes(t)) schemas.push(toSchema(t, where));
      return { anyOf: schemas };
    }
    if (type.isStringLiteral() || type.isNumberLiteral()) return { const: type.value };
    if (type.flags & ts.TypeFlags.String) return { type: 'string' };
    if (type.flags & ts.TypeFlags.Number) return { type: 'number' };
    if (type.flags & ts.TypeFlags.Boolean) return { type: 'boolean' };
    if (type.flags & ts.TypeFlags.Null) return { type: 'null' };
    if (checker.isArrayType(type) || checker.isTupleType(type)) {
      const [item] = checker.getTypeArguments(type);
      return { type: 'array', items: toSchema(item, `${where}[]`) };
    }
    if (type.flags & ts.TypeFlags.Object) {
      const name = nameOf(type);
      if (name) {
        if (!(name in defs)) {
          defs[name] = null; // recursion guard
          defs[name] = objectSchema(type, name);
        }
        return { $ref: `#/$defs/${name}` };
      }
      return objectSchema(type, where);
    }
    throw new Error(`results-schema: no JSON Schema for ${checker.typeToString(type)} at ${where}`);
  };

  const objectSchema = (type, owner) => {
    const properties = {};
    const required = [];
    for (const prop of checker.getPropertiesOfType(type)) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      const propType = checker.getTypeOfSymbolAtLocation(prop, decl ?? file);
      const key = `${owner}.${prop.getName()}`;
      const s = toSchema(propType, key);
      properties[prop.getName()] = PATTERNS[key] ? { ...s, pattern: PATTERNS[key] } : s;
      if (!(prop.flags & ts.SymbolFlags.Optional) && !OPTIONAL.has(key)) required.push(prop.getName());
    }
    const out = { type: 'object', properties };
    if (required.length) out.required = required;
    const index = checker.getIndexInfosOfType(type);
    if (index.length) out.additionalProperties = toSchema(index[0].type, `${owner}[key]`);
    return out;
  };

  const root = named.get('SessionResults');
  const rootType = checker.getTypeAtLocation(root);
  toSchema(rootType, 'SessionResults');
  const sorted = Object.fromEntries(
    Object.keys(defs)
      .sort()
      .map((k) => [k, defs[k]]),
  );
  for (const key of Object.keys(PATTERNS)) {
    const [owner, field] = key.split('.');
    if (!sorted[owner]?.properties?.[field])
      throw new Error(`results-schema: PATTERNS names ${key}, which results.ts does not have`);
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://fair-prune.dev/results.schema.json',
    title: 'Fair Prune session results (results.json)',
    description: 'Generated from src/protocol/results.ts by scripts/results-schema.cjs; do not edit by hand.',
    $ref: '#/$defs/SessionResults',
    $defs: sorted,
  };
}

function schemaText() {
  return JSON.stringify(makeResultsSchema(), null, 2) + '\n';
}

module.exports = { makeResultsSchema, schemaText, OUT };

if (require.main === module) {
  fs.writeFileSync(OUT, schemaText());
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
}

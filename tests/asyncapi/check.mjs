// Parses an AsyncAPI document with @asyncapi/parser and prints its diagnostics as JSON lines;
// exits 1 when any is an error (severity 0). Usage: node check.mjs FILE
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors += 1;
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (!document || errors > 0) {
  console.error(`${file}: ${errors} error(s)`);
  process.exit(1);
}
console.error(`${file}: parsed, ${diagnostics.length} diagnostic(s), no error`);

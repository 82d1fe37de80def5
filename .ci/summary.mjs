// Prints a vitest JSON report as one plain line, "<tier>: N passed, N failed", for CI logs.
import { readFileSync } from 'node:fs';

const [tier, file] = process.argv.slice(2);
const r = JSON.parse(readFileSync(file, 'utf8'));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${tier}: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);

#!/usr/bin/env node
// `rasp` entry point: loads the bundled CLI (built by `npm run build`, run by `prepare` on install).
// Langium 4 calls Object.groupBy (Node >= 21); give older Node a faithful fallback so the CLI runs anywhere.
'use strict';
if (typeof Object.groupBy !== 'function') {
  Object.groupBy = function groupBy(items, keyOf) {
    const out = Object.create(null);
    let i = 0;
    for (const item of items) {
      const key = keyOf(item, i++);
      (out[key] ??= []).push(item);
    }
    return out;
  };
}
if (typeof Map.groupBy !== 'function') {
  Map.groupBy = function groupBy(items, keyOf) {
    const out = new Map();
    let i = 0;
    for (const item of items) {
      const key = keyOf(item, i++);
      if (!out.has(key)) out.set(key, []);
      out.get(key).push(item);
    }
    return out;
  };
}
require('../out/cli.cjs');

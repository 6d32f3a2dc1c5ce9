// Shared by the plugin smoke tests: load a transpiled plugin and build the
// records the host passes (as jco's JavaScript bindings spell them).
import assert from "node:assert/strict";

// Linear memories of the loaded plugin, to check the host's 16 MiB limit.
// Node keeps one instance for all calls (the host makes a fresh one per call),
// so what they add up to here is an upper bound.
const memories = [];
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async (...args) => {
  const made = await instantiate(...args);
  const exports = (made.instance ?? made).exports;
  for (const v of Object.values(exports)) if (v instanceof WebAssembly.Memory) memories.push(v);
  return made;
};
export const memoryBytes = () => memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);
export const MEMORY_LIMIT = 16 * 1024 * 1024;

export async function load(name) {
  const dir = process.env.PLUGINS_JS;
  assert.ok(dir, "run the tests with plugins/test/run");
  const mod = await import(`${dir}/${name}/${name}.js`);
  const { lines } = await import(`${dir}/log.js`);
  return { plugin: mod.taskType, log: lines };
}

export const ctx = (over = {}) => ({ taskId: "t-1", taxYear: 2025, today: "2026-02-10", locale: "en-US", ...over });

const answer = (field, tag, val, review = "waiting") => ({ field, value: { tag, val }, review });
export const text = (f, s) => answer(f, "text", s);
export const num = (f, n) => answer(f, "number", n);
export const cents = (f, n) => answer(f, "cents", BigInt(n));
export const date = (f, d) => answer(f, "date", d);
export const flag = (f, b) => answer(f, "flag", b);
export const picked = (f, ...xs) => answer(f, "picked", xs);
export const files = (f, ...names) => answer(f, "files", names);
export const na = (f, reason) => answer(f, "na", reason);
export const reviewed = (a, review) => ({ ...a, review });

// The error payload of a `result` export that returned `err`.
export function refusal(fn) {
  try {
    fn();
  } catch (e) {
    return e.payload ?? e;
  }
  assert.fail("expected the call to return an error");
}

export function fields(view) {
  return new Map(view.sections.flatMap((s) => s.fields).map((f) => [f.id, f]));
}

export const visible = (view) => [...fields(view).values()].filter((f) => f.visible).map((f) => f.id);

export function issuesFor(list, field) {
  return list.filter((i) => i.field === field);
}

// Milliseconds per call of fn, best of `runs`.
export function timed(fn, runs = 5) {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

// Field and section ids as the contract allows them; field ids unique in the task type.
export function assertIds(sections) {
  const seen = new Set();
  for (const s of sections) {
    assert.match(s.id, /^[a-z0-9.-]+$/, `section id ${s.id}`);
    for (const f of s.fields) {
      assert.match(f.id, /^[a-z0-9.-]+$/, `field id ${f.id}`);
      assert.ok(!seen.has(f.id), `duplicate ${f.id}`);
      seen.add(f.id);
    }
  }
}

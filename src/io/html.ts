/**
 * The pieces every page this project writes shares (the report, the live view, the exported site): HTML escaping,
 * text that may be inlined in `<script>` or `<style>`, and the head's first lines with the page's
 * Content-Security-Policy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { esc, inlineSafe, pageHead } from "./html.ts";
 *
 * assert.equal(esc(`<a href="x">`), "&#60;a href=&#34;x&#34;&#62;");
 * assert.throws(() => inlineSafe("x</script>", "script", "the runtime"), /Cannot inline the runtime/);
 * assert.match(pageHead("t", "default-src 'none'"), /<title>t<\/title>$/);
 * assert.throws(() => pageHead("t", 'x"'), /cannot hold/);
 * ```
 *
 * @module
 */

/** HTML-escapes text for element content and attribute values. */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Text that is safe inside `<script>` or `<style>`: refused when it could close its element (or, in a script, open
 * a comment that would hide the rest of the page).
 *
 * @param text The text.
 * @param tag The element it goes into.
 * @param what What it is, for the error (e.g. "the chart library").
 * @returns The text, unchanged.
 */
export function inlineSafe(text: string, tag: "script" | "style", what: string): string {
  const bad = new RegExp(tag === "script" ? "</script|<!--" : "</style", "i").exec(text);
  if (bad) throw new Error(`Cannot inline ${what}: its ${tag} text contains "${bad[0]}"`);
  return text;
}

/**
 * A page's first lines, up to its title: doctype, charset, viewport, the `generator` meta, the
 * Content-Security-Policy (the browser enforces what the page may load; written as it is, so it may hold no `"`)
 * and the title (escaped).
 *
 * @param title The page's title.
 * @param csp Its Content-Security-Policy.
 * @returns The HTML, without the closing `</head>`.
 */
export function pageHead(title: string, csp: string): string {
  if (csp.includes('"')) throw new Error(`A Content-Security-Policy cannot hold '"': ${csp}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="deno-gan">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${esc(title)}</title>`;
}

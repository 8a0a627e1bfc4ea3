import assert from "node:assert/strict";
import { test } from "node:test";
import { renderSvg } from "../../src/bench/plots.js";
import { renderHtml, renderMarkdown, type Block } from "../../src/bench/report.js";
import { formatMs, formatTokens } from "../../src/bench/format.js";

const blocks: Block[] = [
  { kind: "heading", level: 2, text: "Prefill" },
  { kind: "paragraph", text: "a `code` span & <b>not html</b>" },
  { kind: "table", head: ["model", "a|b"], rows: [["H3", "1.2 s<br>3 tok/s"]], align: ["l", "r"] },
  { kind: "figure", plot: "roofline", title: "Roofline" },
  { kind: "list", items: ["one", "two"] },
];

test("report: Markdown escapes table pipes and links plots beside it", () => {
  const md = renderMarkdown("Title", blocks);
  assert.match(md, /^# Title\n/);
  assert.match(md, /\| model \| a\\\|b \|\n\|---\|---:\|\n\| H3 \| 1\.2 s<br>3 tok\/s \|/);
  assert.match(md, /!\[Roofline\]\(plots\/roofline\.svg\)/);
  assert.match(md, /- one\n- two/);
});

test("report: HTML escapes text, keeps <br> and code, inlines the SVGs", () => {
  const html = renderHtml("T <1>", blocks, new Map([["roofline", "<svg id=\"r\"></svg>"]]));
  assert.match(html, /<title>T &lt;1&gt;<\/title>/);
  assert.match(html, /a <code>code<\/code> span &amp; &lt;b&gt;not html&lt;\/b&gt;/);
  assert.match(html, /<td class="r">1\.2 s<br>3 tok\/s<\/td>/);
  assert.match(html, /<figure><svg id="r"><\/svg><figcaption>Roofline<\/figcaption><\/figure>/);
});

test("plots: a Vega-Lite spec renders to SVG without a browser", async () => {
  const svg = await renderSvg({
    data: { values: [{ x: 1, y: 2 }, { x: 2, y: 3 }] }, mark: "line",
    encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
  });
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<path/);
});

test("format: tokens and durations", () => {
  assert.equal(formatTokens(65536), "64K");
  assert.equal(formatTokens(1536), "1.5K");
  assert.equal(formatTokens(300), "300");
  assert.equal(formatTokens(1048576), "1M");
  assert.equal(formatMs(1500), "1.50 s");
  assert.equal(formatMs(12.34), "12 ms");
  assert.equal(formatMs(0.5), "0.50 ms");
});

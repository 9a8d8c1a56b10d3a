// The libwebrtc baseline for `peal-bench network`:
//   node network.mjs NS_A NS_B SECONDS [Y4M]
//
// Two headless Chromiums, one in each network namespace of a peal-netem
// path (root: `ip netns exec`), make one audio+video call both ways with
// call.html (A calls B); the offer, answer and candidates go through this
// process, so only media crosses the shaped path. With Y4M, the fake camera
// plays that file (peal-bench writes its camera-like synthetic picture) in
// place of Chromium's own light pattern. Every second, both sides'
// window.sample(); after SECONDS, one JSON line on stdout:
//   {"browser": "...", "camera": "...", "samples": [{"a": {...}, "b": {...}}, ...]}
// Progress and errors go to stderr; any failure exits non-zero.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stopOnSignals, within } from "./common.mjs";

const LIMIT_MS = 60_000;
const here = dirname(fileURLToPath(import.meta.url));
const log = (msg) => process.stderr.write(`network.mjs: ${msg}\n`);

const [nsA, nsB, secsArg, y4m] = process.argv.slice(2);
const seconds = Number(secsArg);
if (!nsA || !nsB || !Number.isInteger(seconds) || seconds < 1 || process.argv.length > 6) {
  process.stderr.write("usage: node network.mjs NS_A NS_B SECONDS [Y4M]\n");
  process.exit(2);
}

const html = readFileSync(join(here, "call.html"));
const scratch = mkdtempSync(join(tmpdir(), "peal-bench-network-"));
const contexts = [];

async function cleanup() {
  for (const c of contexts.splice(0)) await c.close().catch((e) => log(`closing a browser: ${e.message}`));
  rmSync(scratch, { recursive: true, force: true });
}

stopOnSignals(log, cleanup);

// A browser whose process runs in namespace `ns`: playwright talks to it
// over a pipe, which crosses namespaces; its network is the namespace's.
async function browserIn(ns, name) {
  const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
  const wrapper = join(scratch, `chromium-${name}`);
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${ns}' '${chromiumPath}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  const camera = y4m ? [`--use-file-for-fake-video-capture=${y4m}`] : [];
  const context = await within(
    chromium.launchPersistentContext(join(scratch, `profile-${name}`), {
      executablePath: wrapper,
      headless: true,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      args: [
        "--use-fake-device-for-media-stream=fps=30",
        "--use-fake-ui-for-media-stream",
        ...camera,
        // Candidates with the namespace's address, not mDNS names.
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
      ],
    }),
    LIMIT_MS,
    `launching Chromium in ${ns}`,
  );
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => log(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") log(`${name}: page ${m.type()}: ${m.text()}`);
  });
  // Served from here (no network needed); localhost is a secure context.
  await page.route("http://localhost/**", (route) =>
    route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html }),
  );
  return { context, page };
}

async function main() {
  const a = await browserIn(nsA, "a");
  const b = await browserIn(nsB, "b");
  const cdp = await a.context.newCDPSession(a.page);
  const { product } = await cdp.send("Browser.getVersion");
  await cdp.detach().catch(() => {});
  const browser = product.replace(/^[^/]*\//, "");
  log(`browser ${browser}`);
  const relay = (to) => (text) => {
    to.page.evaluate((t) => window.onSignal(t), text).catch((e) => log(`signaling: ${e.message}`));
  };
  await a.page.exposeFunction("signal", relay(b));
  await b.page.exposeFunction("signal", relay(a));
  for (const s of [a, b]) await s.page.goto("http://localhost/call.html", { timeout: LIMIT_MS });
  const camera = await within(b.page.evaluate(() => window.start(false)), LIMIT_MS, "the callee's start");
  await within(a.page.evaluate(() => window.start(true)), LIMIT_MS, "the caller's start");
  log(`calling (camera ${camera}) for ${seconds} s`);
  const samples = [];
  const started = Date.now();
  for (let i = 1; i <= seconds; i++) {
    const wait = started + i * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const [sa, sb] = await Promise.all([a.page.evaluate(() => window.sample()), b.page.evaluate(() => window.sample())]);
    samples.push({ a: sa, b: sb });
  }
  const last = samples[samples.length - 1].b;
  if (!last.video_in || last.video_in.frames_decoded === 0) {
    throw new Error(`the callee decoded no video (connection ${last.state})`);
  }
  return { browser, camera, seconds, samples };
}

let code = 0;
try {
  const result = await main();
  await cleanup();
  // A pipe takes a large write asynchronously: exit only once it is out.
  await new Promise((resolve) => process.stdout.write(JSON.stringify(result) + "\n", resolve));
} catch (e) {
  log(`failed: ${e?.message ?? e}`);
  code = 1;
  await cleanup();
}
process.exit(code);

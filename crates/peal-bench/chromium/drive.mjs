// The libwebrtc baseline for `peal-bench media`: `node drive.mjs TRIALS`.
//
// Serves page.html on 127.0.0.1, opens it in headless Chromium (a fresh
// profile in a temp dir), runs 2 warm-up trials and then TRIALS measured ones
// of window.trial(), and prints one JSON line on stdout with the browser's
// version, p50/p90/max/min of each stage and every sample. Progress and
// errors go to stderr; any failure exits non-zero. Run it through run.sh:
// Chromium does not offer 127.0.0.1 as an ICE candidate, so it needs the
// private network namespace that run.sh makes.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stopOnSignals, within } from "./common.mjs";

const WARMUP = 2;
const TRIAL_LIMIT_MS = 30_000; // the page gives up at 10 s; this is if it hangs
const LAUNCH_LIMIT_MS = 60_000;

const here = dirname(fileURLToPath(import.meta.url));
const log = (msg) => process.stderr.write(`drive: ${msg}\n`);

const arg = process.argv[2];
const trials = Number(arg);
if (process.argv.length !== 3 || !Number.isInteger(trials) || trials < 1) {
  process.stderr.write("usage: node drive.mjs TRIALS   (TRIALS: a whole number, at least 1)\n");
  process.exit(2);
}

const html = readFileSync(join(here, "page.html"));
let server = null;
let context = null;
let profile = null;
let cleaning = null;

function cleanup() {
  cleaning ??= (async () => {
    if (context) await context.close().catch((e) => log(`closing the browser: ${e.message}`));
    if (server) await new Promise((r) => server.close(r));
    if (profile) rmSync(profile, { recursive: true, force: true });
  })();
  return cleaning;
}

stopOnSignals(log, cleanup);

// Nearest rank, as peal-bench's report::pct does.
function pct(sorted, p) {
  const i = Math.round((sorted.length - 1) * p);
  return sorted[Math.min(i, sorted.length - 1)];
}

function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  return { p50: pct(v, 0.5), p90: pct(v, 0.9), max: v[v.length - 1], min: v[0] };
}

async function main() {
  server = createServer((req, res) => {
    if (req.method === "GET" && (req.url === "/" || req.url === "/page.html")) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(html);
    } else if (req.url === "/favicon.ico") {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}/`;

  profile = mkdtempSync(join(tmpdir(), "peal-bench-chromium-"));
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  log(`launching ${executablePath}`);
  context = await within(
    chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      args: [
        // The fake camera gives 20 fps unless told otherwise.
        "--use-fake-device-for-media-stream=fps=30",
        "--use-fake-ui-for-media-stream",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    }),
    LAUNCH_LIMIT_MS,
    `launching ${executablePath}`,
  );

  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => log(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") log(`page ${m.type()}: ${m.text()}`);
  });

  const cdp = await context.newCDPSession(page);
  const { product } = await cdp.send("Browser.getVersion");
  await cdp.detach().catch(() => {});
  const browser = product.replace(/^[^/]*\//, ""); // "HeadlessChrome/156.0.8078.114" -> "156.0.8078.114"
  log(`browser ${browser}`);

  await page.goto(url, { waitUntil: "load", timeout: LAUNCH_LIMIT_MS });
  const cam = await within(page.evaluate(() => window.setup()), TRIAL_LIMIT_MS, "setup (getUserMedia)");
  log(`camera ${cam.label}: ${cam.width}x${cam.height}@${cam.frameRate}`);

  const samples = [];
  for (let i = 1; i <= WARMUP + trials; i++) {
    const warm = i <= WARMUP;
    const name = warm ? `warm-up ${i}/${WARMUP}` : `trial ${i - WARMUP}/${trials}`;
    const s = await within(page.evaluate(() => window.trial()), TRIAL_LIMIT_MS, name).catch((e) => {
      throw new Error(`${name}: ${e.message.split("\n")[0].replace(/^page\.evaluate: (Error: )?/, "")}`);
    });
    log(
      `${name}: offer ${s.offer_ms} ms, ice ${s.ice_connected_ms} ms, dtls ${s.dtls_connected_ms} ms, ` +
        `first frame ${s.first_frame_ms} ms (${s.codec ?? "codec ?"}, ${s.width}x${s.height})`,
    );
    if (!warm) samples.push(s);
  }

  return {
    browser,
    trials,
    offer_to_ice_connected_ms: summary(samples.map((s) => s.ice_connected_ms)),
    offer_to_dtls_connected_ms: summary(samples.map((s) => s.dtls_connected_ms)),
    offer_to_first_frame_ms: summary(samples.map((s) => s.first_frame_ms)),
    samples,
  };
}

let code = 0;
try {
  const result = await main();
  await cleanup();
  process.stdout.write(JSON.stringify(result) + "\n");
} catch (e) {
  log(`failed: ${e?.message ?? e}`);
  code = 1;
  await cleanup();
}
process.exit(code);

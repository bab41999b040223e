// Drives the TypeScript SDK for tests/integration/sdk/test_contract.py: node record.mjs
// <compiled index.js> <documents.json>. Calls every method of WeatherProxyClient twice through
// a fetch that answers each path with its documents (path -> [values, nulls], made from the
// OpenAPI response schemas), and prints as JSON the client's methods and the requests sent.
// (The models are types: tsc checks them, see contract.typescript_assertions.)
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const { WeatherProxyClient } = await import(pathToFileURL(process.argv[2]).href);
const documents = JSON.parse(readFileSync(process.argv[3], "utf8"));
const served = new Map();
const requests = [];
let current = "";

async function fakeFetch(input, init = {}) {
  const url = new URL(String(input));
  const query = {};
  for (const [name, value] of url.searchParams) (query[name] ??= []).push(value);
  const headers = [...new Headers(init.headers).keys()].sort();
  requests.push({ call: current, method: init.method ?? "GET", path: url.pathname, query, headers });
  const docs = documents[url.pathname];
  if (!docs) return new Response('{"type":"about:blank","title":"Not found","status":404}', { status: 404 });
  const n = served.get(url.pathname) ?? 0;
  served.set(url.pathname, n + 1);
  return new Response(JSON.stringify(docs[n % docs.length]), {
    status: 200,
    headers: { "content-type": "application/json", etag: 'W/"0123456789abcdef"' },
  });
}

const client = new WeatherProxyClient({ baseUrl: "http://proxy.test", apiKey: "wpk_contract", fetch: fakeFetch });
const range = { from: "2026-11-23", to: new Date(Date.UTC(2026, 10, 29)) };
const calls = {
  weather: [(c) => c.weather({ city: "Paris", country: "FR" }), (c) => c.weather({ lat: 48.85, lon: 2.35 })],
  usage: [(c) => c.usage()],
  usageHistory: [(c) => c.usageHistory({ range, granularity: "hour" })],
  topCities: [(c) => c.topCities({ range, limit: 5 })],
  countries: [(c) => c.countries({ range })],
  peakHours: [(c) => c.peakHours({ range })],
  cacheEfficiency: [(c) => c.cacheEfficiency({ range, granularity: "hour" })],
  upstreamCalls: [(c) => c.upstreamCalls({ range, granularity: "day" })],
};
const errors = [];
for (const [name, variants] of Object.entries(calls)) {
  current = name;
  for (const variant of variants) {
    for (let i = 0; i < 2; i++) {
      try {
        await variant(client); // the second time with If-None-Match, answered with the nulls document
      } catch (error) {
        errors.push(`${name}: ${String(error)}`);
      }
    }
  }
}
const methods = Object.getOwnPropertyNames(WeatherProxyClient.prototype).filter((n) => n !== "constructor");
process.stdout.write(JSON.stringify({ methods, requests, errors }));

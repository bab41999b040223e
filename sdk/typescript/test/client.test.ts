/**
 * The SDK against a real proxy. `tests/integration/sdk/test_typescript_client.py` starts the
 * proxy and the Open-Meteo emulator and runs `npm test` with WEATHER_PROXY_URL, the keys
 * (WEATHER_PROXY_KEY, WEATHER_PROXY_KEY_<NAME>) and WEATHER_PROXY_EMULATOR set; without them
 * every test is skipped.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ApiError, TransportError, WeatherProxyClient, kindOf } from "../src/index.js";
import type { ClientOptions, DateRange } from "../src/index.js";

const env = process.env;
const baseUrl = env["WEATHER_PROXY_URL"];
const skip = baseUrl ? false : "WEATHER_PROXY_URL is not set (see tests/integration/sdk)";
// The proxy keeping a usage history (PostgreSQL), with the stack's seeded requests in it: Paris
// twice (a miss, then a hit), London, an unknown place; all by the key ANALYTICS.
const analyticsUrl = env["WEATHER_PROXY_ANALYTICS_URL"];
const skipAnalytics = analyticsUrl ? false : "WEATHER_PROXY_ANALYTICS_URL is not set (see tests/integration/sdk)";

/** Yesterday and today (UTC): the counts hold when the suite runs across midnight. */
function twoDays(): DateRange {
  const today = new Date();
  return { from: new Date(today.getTime() - 86_400_000), to: today };
}

function sum<T>(items: T[], count: (item: T) => number): number {
  return items.reduce((total, item) => total + count(item), 0);
}

function key(name?: string): string {
  const value = env[name ? `WEATHER_PROXY_KEY_${name}` : "WEATHER_PROXY_KEY"];
  assert.ok(value, `the key ${name ?? "main"} is not set`);
  return value;
}

interface Exchange {
  status: number;
  headers: Headers;
}

/** A client whose fetch records every exchange. */
function recorded(apiKey: string | undefined, options: Partial<ClientOptions> = {}) {
  const exchanges: Exchange[] = [];
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    exchanges.push({ status: response.status, headers: new Headers(init?.headers) });
    return response;
  };
  const client = new WeatherProxyClient({
    baseUrl: baseUrl ?? "",
    ...(apiKey ? { apiKey } : {}),
    ...options,
    fetch: recording,
  });
  return { client, exchanges, statuses: () => exchanges.map((e) => e.status) };
}

async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the call to be refused");
}

async function setFault(endpoint: string, mode: string, times: number): Promise<void> {
  const response = await fetch(`${env["WEATHER_PROXY_EMULATOR"]}/__control`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ endpoint, mode, times }),
  });
  assert.equal(response.status, 200);
}

describe("WeatherProxyClient against a real proxy", { skip }, () => {
  test("a city's weather is typed and carries the rate limit", async () => {
    const { client } = recorded(key());
    const weather = await client.weather({ city: "Paris", country: "FR" });
    assert.equal(weather.location.name, "Paris");
    assert.equal(weather.location.country, "FR");
    assert.equal(weather.location.timezone, "Europe/Paris");
    assert.equal(typeof weather.current.temperatureC, "number");
    assert.equal(typeof weather.current.weatherCode, "number");
    assert.ok(["hit", "miss", "stale"].includes(weather.cache.status));
    assert.equal(weather.source, "open-meteo");
    assert.equal(weather.meta.status, 200);
    assert.equal(weather.meta.notModified, false);
    assert.ok(weather.meta.requestId);
    assert.ok(weather.meta.etag);
    assert.equal(weather.meta.rateLimit?.limit, 1000);
  });

  test("coordinates", async () => {
    const { client } = recorded(key());
    const weather = await client.weather({ lat: 48.85, lon: 2.35 });
    assert.equal(weather.location.name, null);
    assert.ok(Math.abs(weather.location.latitude - 48.85) < 1e-6);
  });

  test("the second call revalidates with the ETag and gets 304", async () => {
    const { client, exchanges, statuses } = recorded(key());
    const first = await client.weather({ city: "London", country: "GB" });
    const second = await client.weather({ city: "London", country: "GB" });
    assert.deepEqual(statuses(), [200, 304]);
    assert.equal(exchanges[0]?.headers.get("if-none-match"), null);
    assert.equal(exchanges[1]?.headers.get("if-none-match"), first.meta.etag);
    assert.equal(second.meta.notModified, true);
    assert.deepEqual(second.current, first.current);
    assert.ok(second.meta.rateLimit);
  });

  test("no key: missing-api-key (401)", async () => {
    const { client } = recorded(undefined);
    const error = await refusal(client.weather({ city: "Paris" }));
    assert.equal(error.kind, "missing-api-key");
    assert.equal(error.status, 401);
    assert.equal(error.problem.type, "https://weatherproxy.dev/problems/missing-api-key");
    assert.ok(error.problem.title);
    assert.ok(error.problem.detail);
    assert.ok(error.problem.instance);
  });

  test("an unknown or disabled key: invalid-key (403)", async () => {
    for (const name of ["UNKNOWN", "DISABLED"]) {
      const { client } = recorded(key(name));
      const error = await refusal(client.weather({ city: "Paris" }));
      assert.equal(error.kind, "invalid-key");
      assert.equal(error.status, 403);
    }
  });

  test("a key without the scope: insufficient-scope (403)", async () => {
    const { client } = recorded(key("USAGE_ONLY"));
    const error = await refusal(client.weather({ city: "Paris" }));
    assert.equal(error.kind, "insufficient-scope");
    assert.match(error.problem.detail, /weather:read/);
    assert.equal((await client.usage()).keyId, "sdk/usage_only");
  });

  test("an unknown city: not-found (404)", async () => {
    const { client } = recorded(key());
    const error = await refusal(client.weather({ city: "Atlantis" }));
    assert.equal(error.kind, "not-found");
    assert.match(error.problem.detail, /Atlantis/);
  });

  test("bad input: bad-request (400)", async () => {
    const { client } = recorded(key());
    const error = await refusal(client.weather({ lat: 91, lon: 0 }));
    assert.equal(error.kind, "bad-request");
  });

  test("rate-limited is retried after Retry-After", async () => {
    const { client, statuses } = recorded(key("TINY"));
    await client.weather({ city: "Madrid" });
    const started = Date.now();
    const weather = await client.weather({ city: "Rome" });
    assert.deepEqual(statuses(), [200, 429, 200]);
    assert.ok(Date.now() - started >= 900, "waited Retry-After: 1");
    assert.equal(weather.location.name, "Rome");
  });

  test("rate-limited is thrown when retries are off", async () => {
    const { client, statuses } = recorded(key("TINY_STRICT"), { retry: { maxAttempts: 1 } });
    await client.weather({ city: "Paris" });
    const error = await refusal(client.weather({ city: "Paris" }));
    assert.deepEqual(statuses(), [200, 429]);
    assert.equal(error.kind, "rate-limited");
    assert.ok((error.retryAfterSeconds ?? 0) >= 1);
    assert.equal(error.rateLimit?.remaining, 0);
    assert.equal(error.rateLimit?.limit, 1);
  });

  test("a spent quota is thrown at once", async () => {
    const { client, statuses } = recorded(key("QUOTA"));
    await client.weather({ city: "Paris" }); // the one request of the quota
    const usage = await client.usage(); // answered, and spending nothing, with the quota spent
    assert.equal(usage.quota?.limit, 1);
    assert.equal(usage.quota?.used, 1);
    assert.ok(Date.parse(usage.quota?.resetsAt ?? "") > Date.now());
    const started = Date.now();
    const error = await refusal(client.weather({ city: "Paris" }));
    assert.ok(Date.now() - started < 900, "no wait: the quota resets at the day's end");
    assert.deepEqual(statuses(), [200, 200, 429]);
    assert.equal(error.kind, "quota-exceeded");
    assert.ok((error.retryAfterSeconds ?? 0) >= 1);
  });

  test("upstream-unavailable (503) is retried after Retry-After", async () => {
    await setFault("forecast", "error500", 1);
    const { client, statuses } = recorded(key());
    const weather = await client.weather({ city: "Vienna" });
    assert.deepEqual(statuses(), [503, 200]);
    assert.equal(weather.location.name, "Vienna");
  });

  test("upstream-unavailable is thrown when the wait budget is spent", async () => {
    await setFault("forecast", "error500", 1);
    const { client, statuses } = recorded(key(), { retry: { maxWaitMs: 500 } });
    const error = await refusal(client.weather({ city: "Zurich" }));
    assert.deepEqual(statuses(), [503]);
    assert.equal(error.kind, "upstream-unavailable");
    assert.equal(error.retryAfterSeconds, 1);
  });

  test("an abort signal stops the wait for Retry-After", async () => {
    const { client } = recorded(key("TINY_STRICT"));
    await client.weather({ city: "Paris" }); // takes the one token (waiting for it if it was spent)
    const started = Date.now();
    await assert.rejects(client.weather({ city: "Paris" }, { signal: AbortSignal.timeout(200) }), {
      name: "TimeoutError",
    });
    assert.ok(Date.now() - started < 900, "stopped at the signal, not after Retry-After");
  });

  test("usage is typed", async () => {
    const { client } = recorded(key());
    const usage = await client.usage();
    assert.equal(usage.keyId, "sdk/main");
    assert.equal(usage.limit.requestsPerMinute, 10_000);
    assert.equal(usage.limit.capacity, 1000);
    assert.equal(usage.quota, null);
    assert.ok(usage.meta.rateLimit);
  });
});

describe("the usage history and the analytics routes", { skip: skipAnalytics }, () => {
  const analytics = () => recorded(key("ANALYTICS"), { baseUrl: analyticsUrl ?? "" });

  test("usage history per day and per hour", async () => {
    const { client, statuses } = analytics();
    const daily = await client.usageHistory({ range: twoDays() });
    assert.equal(daily.key, "sdk/analytics");
    assert.equal(daily.periods.length, 2);
    assert.match(daily.periods[0]?.start ?? "", /^\d{4}-\d{2}-\d{2}T00:00:00Z$/);
    assert.ok(sum(daily.periods, (p) => p.requests) >= 4, "the seeded requests, and this suite's own");
    assert.ok(sum(daily.periods, (p) => p.errors) >= 1, "the unknown place");
    assert.ok(sum(daily.periods, (p) => p.cacheHits) >= 1, "Paris, the second time");
    assert.ok(daily.meta.rateLimit);
    const hourly = await client.usageHistory({ range: twoDays(), granularity: "hour" });
    assert.equal(hourly.periods.length, 48);
    assert.deepEqual(statuses(), [200, 200]);
  });

  test("top cities and countries", async () => {
    const { client } = analytics();
    const top = await client.topCities({ range: twoDays(), limit: 1 });
    assert.deepEqual(top.items, [{ name: "Paris", country: "FR", requests: 2 }]);
    assert.equal(top.meta.status, 200);
    assert.equal((await client.topCities({ range: twoDays() })).items.length, 2);
    const countries = await client.countries({ range: twoDays() });
    assert.deepEqual(countries.items, [
      { country: "FR", requests: 2 },
      { country: "GB", requests: 1 },
    ]);
    assert.deepEqual((await client.countries()).items, countries.items, "no range: the last 7 days");
  });

  test("peak hours cover the week", async () => {
    const { client } = analytics();
    const cells = (await client.peakHours({ range: twoDays() })).items;
    assert.equal(cells.length, 168);
    assert.deepEqual(cells[25], { weekday: 1, hour: 1, requests: cells[25]?.requests });
    assert.ok(sum(cells, (c) => c.requests) >= 4);
  });

  test("cache efficiency and upstream calls", async () => {
    const { client } = analytics();
    const cache = (await client.cacheEfficiency({ range: twoDays() })).items;
    assert.equal(cache.length, 2);
    assert.equal(sum(cache, (p) => p.hits), 1);
    assert.equal(sum(cache, (p) => p.misses), 2);
    assert.ok(cache.some((p) => p.hitRatio !== null && Math.abs(p.hitRatio - 1 / 3) < 1e-4));
    const hourly = (await client.cacheEfficiency({ range: twoDays(), granularity: "hour" })).items;
    assert.equal(hourly.length, 48);
    assert.ok(hourly.every((p) => p.hits + p.misses + p.stale > 0 || p.hitRatio === null));
    const upstream = (await client.upstreamCalls({ range: twoDays(), granularity: "hour" })).items;
    assert.equal(upstream.length, 48);
    assert.equal(sum(upstream, (p) => p.geocode), 3);
    assert.equal(sum(upstream, (p) => p.forecast), 2);
  });

  test("refusals: bad-request, insufficient-scope, analytics-disabled", async () => {
    const { client } = analytics();
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86_400_000);
    const backwards = await refusal(client.countries({ range: { from: today, to: yesterday } }));
    assert.equal(backwards.kind, "bad-request");
    const tooLong = await refusal(
      client.usageHistory({ range: { from: new Date(today.getTime() - 400 * 86_400_000), to: today } }),
    );
    assert.equal(tooLong.kind, "bad-request");
    const noScope = await refusal(recorded(key(), { baseUrl: analyticsUrl ?? "" }).client.peakHours());
    assert.equal(noScope.kind, "insufficient-scope");
    assert.match(noScope.problem.detail, /analytics:read/);
    // The first proxy keeps no history.
    const disabled = await refusal(recorded(key("ANALYTICS")).client.topCities());
    assert.equal(disabled.kind, "analytics-disabled");
    assert.equal(disabled.status, 404);
    assert.equal(disabled.problem.type, "https://weatherproxy.dev/problems/analytics-disabled");
    const noHistory = await refusal(recorded(key("ANALYTICS")).client.usageHistory({ range: twoDays() }));
    assert.equal(noHistory.kind, "analytics-disabled");
  });
});

test("the analytics problems have kinds of their own", () => {
  const problem = (slug: string, status: number) => ({
    type: `https://weatherproxy.dev/problems/${slug}`,
    title: "",
    status,
    detail: "",
    instance: "",
  });
  assert.equal(kindOf(problem("analytics-disabled", 404)), "analytics-disabled");
  assert.equal(kindOf(problem("analytics-unavailable", 503)), "analytics-unavailable");
  assert.equal(kindOf(problem("something-new", 503)), "upstream-unavailable");
});

test("a refused connection is a TransportError", async () => {
  const client = new WeatherProxyClient({ baseUrl: "http://127.0.0.1:9", retry: { defaultDelayMs: 10 } });
  await assert.rejects(client.weather({ city: "Paris" }), TransportError);
});

/**
 * `WeatherProxyClient`: the API's calls over fetch, with the API key given once, retries that
 * honour Retry-After, and ETag revalidation.
 *
 * Retries: 429 rate-limited and 503 are tried again after their Retry-After, and a refused
 * connection after `defaultDelayMs`, while the attempts and the total wait allow; a wait longer
 * than what is left is not slept, the error is thrown with it. 429 quota-exceeded is never
 * retried: its Retry-After is the end of the day or month.
 */

import { ApiError, TransportError, parseProblem } from "./errors.js";
import { rateLimitFrom } from "./models.js";
import type {
  CachePeriod,
  CountryCount,
  DateRange,
  Granularity,
  Listing,
  PeakHour,
  ResponseMeta,
  TopCity,
  UpstreamPeriod,
  Usage,
  UsageHistory,
  Weather,
  WithMeta,
} from "./models.js";

export interface RetryPolicy {
  /** tries in all, the first one included (1: no retries) */
  maxAttempts: number;
  /** milliseconds of waiting in all, across the retries of one call */
  maxWaitMs: number;
  /** the wait when a retried answer (or a refused connection) names none */
  defaultDelayMs: number;
}

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** sent as X-API-Key on every request */
  apiKey?: string;
  retry?: Partial<RetryPolicy>;
  /** per attempt; default 10 s */
  timeoutMs?: number;
  /** URLs whose last ETag and body are kept for If-None-Match; default 256 */
  etagCacheSize?: number;
  /** a fetch of your own (proxies, instrumentation, tests) */
  fetch?: typeof globalThis.fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export type WeatherQuery = { city: string; country?: string } | { lat: number; lon: number };

export interface UsageHistoryQuery {
  range: DateRange;
  /** default "day" */
  granularity?: Granularity;
}

export interface AnalyticsQuery {
  /** default: the last 7 days */
  range?: DateRange;
}

export interface TopCitiesQuery extends AnalyticsQuery {
  /** how many cities, 1 to 100; default 10 */
  limit?: number;
}

export interface SeriesQuery extends AnalyticsQuery {
  /** default "day" */
  granularity?: Granularity;
}

type Params = Record<string, string>;

const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, maxWaitMs: 30_000, defaultDelayMs: 1_000 };
const QUOTA_EXCEEDED = "https://weatherproxy.dev/problems/quota-exceeded";

interface Stored {
  etag: string;
  body: string;
}

export class WeatherProxyClient {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #etagCacheSize: number;
  readonly #etags = new Map<string, Stored>();
  readonly #fetch: typeof globalThis.fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    if (this.retry.maxAttempts < 1) throw new RangeError("retry.maxAttempts: must be at least 1");
    this.#headers = { accept: "application/json, application/problem+json" };
    if (options.apiKey) this.#headers["x-api-key"] = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#etagCacheSize = options.etagCacheSize ?? 256;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Current weather for a city (optionally narrowed by country) or at coordinates. */
  async weather(query: WeatherQuery, options: RequestOptions = {}): Promise<WithMeta<Weather>> {
    const params: Record<string, string> =
      "city" in query
        ? { city: query.city, ...(query.country ? { country: query.country } : {}) }
        : { lat: String(query.lat), lon: String(query.lon) };
    return this.#get<Weather>("/v1/weather", params, options);
  }

  /** The calling key's limit, remaining tokens, quota and today's counts. */
  async usage(options: RequestOptions = {}): Promise<WithMeta<Usage>> {
    return this.#get<Usage>("/v1/usage", {}, options);
  }

  /** The calling key's requests, errors and cache hits per UTC day (or hour) of the range. */
  async usageHistory(query: UsageHistoryQuery, options: RequestOptions = {}): Promise<WithMeta<UsageHistory>> {
    return this.#get<UsageHistory>("/v1/usage", { ...rangeParams(query.range), ...granularity(query) }, options);
  }

  /** The most requested places, most first. Needs the scope analytics:read, as every analytics call. */
  async topCities(
    query: TopCitiesQuery = {},
    options: RequestOptions = {},
  ): Promise<WithMeta<Listing<TopCity>>> {
    const limit: Params = query.limit === undefined ? {} : { limit: String(query.limit) };
    return this.#list<TopCity>("/v1/analytics/top-cities", { ...rangeParams(query.range), ...limit }, options);
  }

  /** Weather requests per country of the place asked for, most first. */
  async countries(
    query: AnalyticsQuery = {},
    options: RequestOptions = {},
  ): Promise<WithMeta<Listing<CountryCount>>> {
    return this.#list<CountryCount>("/v1/analytics/countries", rangeParams(query.range), options);
  }

  /** API requests per UTC weekday and hour: all 168 cells, by weekday then hour. */
  async peakHours(
    query: AnalyticsQuery = {},
    options: RequestOptions = {},
  ): Promise<WithMeta<Listing<PeakHour>>> {
    return this.#list<PeakHour>("/v1/analytics/peak-hours", rangeParams(query.range), options);
  }

  /** Weather answers per period by cache status, and the hit ratio; oldest first. */
  async cacheEfficiency(
    query: SeriesQuery = {},
    options: RequestOptions = {},
  ): Promise<WithMeta<Listing<CachePeriod>>> {
    const params = { ...rangeParams(query.range), ...granularity(query) };
    return this.#list<CachePeriod>("/v1/analytics/cache", params, options);
  }

  /** Calls to Open-Meteo per period and API (geocoding, forecast); oldest first. */
  async upstreamCalls(
    query: SeriesQuery = {},
    options: RequestOptions = {},
  ): Promise<WithMeta<Listing<UpstreamPeriod>>> {
    const params = { ...rangeParams(query.range), ...granularity(query) };
    return this.#list<UpstreamPeriod>("/v1/analytics/upstream", params, options);
  }

  #list<T>(path: string, params: Params, options: RequestOptions): Promise<WithMeta<Listing<T>>> {
    return this.#get(path, params, options, (body) => ({ items: JSON.parse(body) as T[] }));
  }

  async #get<T>(
    path: string,
    params: Params,
    options: RequestOptions,
    read: (body: string) => T = (body) => JSON.parse(body) as T,
  ): Promise<WithMeta<T>> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const key = url.toString();
    const stored = this.#recall(key);
    const headers = { ...this.#headers, ...(stored ? { "if-none-match": stored.etag } : {}) };
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.#fetch(key, { headers, signal: this.#signal(options.signal) });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        const delay = this.#delay(this.retry.defaultDelayMs, attempt, waited);
        if (delay === null) throw new TransportError(`GET ${key}: ${String(error)}`, { cause: error });
        await sleep(delay, options.signal);
        waited += delay;
        continue;
      }
      const body = await response.text();
      const retryAfterMs = retryAfter(response.headers);
      if (response.status === 429 || response.status === 503) {
        const problem = parseProblem(response.status, response.statusText, body);
        const delay =
          problem.type === QUOTA_EXCEEDED
            ? null
            : this.#delay(retryAfterMs ?? this.retry.defaultDelayMs, attempt, waited);
        if (delay !== null) {
          await sleep(delay, options.signal);
          waited += delay;
          continue;
        }
      }
      return this.#decode<T>(key, response, body, stored, retryAfterMs, read);
    }
  }

  #decode<T>(
    key: string,
    response: Response,
    body: string,
    stored: Stored | undefined,
    retryAfterMs: number | null,
    read: (body: string) => T,
  ): WithMeta<T> {
    const rateLimit = rateLimitFrom(response.headers);
    if (response.status === 304 && stored) {
      const meta: ResponseMeta = {
        status: 304,
        requestId: response.headers.get("x-request-id"),
        etag: response.headers.get("etag") ?? stored.etag,
        rateLimit,
        notModified: true,
      };
      return { ...read(stored.body), meta };
    }
    if (!response.ok) {
      const problem = parseProblem(response.status, response.statusText, body);
      throw new ApiError(problem, retryAfterMs === null ? null : retryAfterMs / 1000, rateLimit);
    }
    const etag = response.headers.get("etag");
    if (etag) this.#remember(key, { etag, body });
    const meta: ResponseMeta = {
      status: response.status,
      requestId: response.headers.get("x-request-id"),
      etag,
      rateLimit,
      notModified: false,
    };
    return { ...read(body), meta };
  }

  #delay(wantedMs: number, attempt: number, waited: number): number | null {
    if (attempt >= this.retry.maxAttempts || waited + wantedMs > this.retry.maxWaitMs) return null;
    return wantedMs;
  }

  #signal(caller: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    if (!caller) return timeout;
    if (typeof AbortSignal.any === "function") return AbortSignal.any([caller, timeout]);
    const either = new AbortController(); // Node 18 has no AbortSignal.any
    for (const signal of [caller, timeout]) {
      signal.addEventListener("abort", () => either.abort(signal.reason), { once: true });
    }
    return either.signal;
  }

  #recall(key: string): Stored | undefined {
    const found = this.#etags.get(key);
    if (found) {
      this.#etags.delete(key); // most recently used last
      this.#etags.set(key, found);
    }
    return found;
  }

  #remember(key: string, stored: Stored): void {
    if (this.#etagCacheSize <= 0) return;
    this.#etags.delete(key);
    this.#etags.set(key, stored);
    for (const oldest of this.#etags.keys()) {
      if (this.#etags.size <= this.#etagCacheSize) break;
      this.#etags.delete(oldest);
    }
  }
}

/** `from` and `to` of a range (none: the proxy's default, the last 7 days). */
function rangeParams(range: DateRange | undefined): Params {
  return range ? { from: day(range.from), to: day(range.to) } : {};
}

/** A UTC day as `YYYY-MM-DD`: a `Date`'s UTC date, a string as it is. */
function day(value: string | Date): string {
  return typeof value === "string" ? value : value.toISOString().slice(0, 10);
}

function granularity(query: { granularity?: Granularity }): Params {
  return query.granularity === undefined ? {} : { granularity: query.granularity };
}

/** Retry-After in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfter(headers: Headers): number | null {
  const value = headers.get("retry-after")?.trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted(): void {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

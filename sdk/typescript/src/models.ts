/**
 * Typed documents of the API. Field names are the JSON's (camelCase); a newer proxy may add
 * fields, which these types simply do not name.
 */

export interface Location {
  /** null for a query by coordinates */
  name: string | null;
  /** ISO 3166-1 alpha-2 */
  country: string | null;
  latitude: number;
  longitude: number;
  timezone: string | null;
}

export interface Current {
  /** ISO 8601 local time of the observation, 15-minute steps */
  time: string;
  temperatureC: number | null;
  windSpeedKmh: number | null;
  windDirectionDeg: number | null;
  /** WMO weather code */
  weatherCode: number | null;
  description: string;
  isDay: boolean | null;
}

export interface CacheInfo {
  status: "hit" | "miss" | "stale";
  ageSeconds: number;
  stale: boolean;
}

/** `GET /v1/weather`. Weather data by Open-Meteo.com (CC BY 4.0). */
export interface Weather {
  location: Location;
  current: Current;
  cache: CacheInfo;
  source: string;
}

export interface Limit {
  /** the sustained rate: tokens refilled per minute */
  requestsPerMinute: number;
  /** the bucket's capacity as configured (0 counts as 1) */
  burst: number;
  /** tokens the bucket holds (RateLimit-Limit) */
  capacity: number;
  /** the most requests any 60 s may admit */
  window: number;
}

export interface Quota {
  limit: number;
  used: number;
  remaining: number;
  /** the end of the UTC day or month, RFC 3339 */
  resetsAt: string;
}

/** `GET /v1/usage`: the calling key's limit, what is left of it, and today's counts. */
export interface Usage {
  keyId: string;
  limit: Limit;
  remaining: number;
  resetSeconds: number;
  quota: Quota | null;
  requests: Record<string, unknown>;
}

/** A UTC day, `YYYY-MM-DD`. */
export type Day = string;

/** Whole UTC days, `from` and `to` both included (at most 366); a `Date` counts as its UTC day. */
export interface DateRange {
  from: Day | Date;
  to: Day | Date;
}

/** The length of a period of a series: a UTC day or hour. */
export type Granularity = "day" | "hour";

/** A period of `GET /v1/usage?from=&to=`. */
export interface UsagePeriod {
  /** the start of the UTC day or hour, RFC 3339 */
  start: string;
  /** of the key in the period */
  requests: number;
  /** of which answered with a status of 400 or more */
  errors: number;
  /** of which served fresh from the cache */
  cacheHits: number;
}

/** `GET /v1/usage?from=&to=&granularity=`: the calling key's counts per UTC day or hour. */
export interface UsageHistory {
  /** the key's id (namespace/name of the ApiKey) */
  key: string;
  /** every period of the range, oldest first */
  periods: UsagePeriod[];
}

/** A row of `GET /v1/analytics/top-cities`: a place by the geocoder's name and country. */
export interface TopCity {
  name: string;
  /** ISO 3166-1 alpha-2 */
  country: string | null;
  requests: number;
}

/** A row of `GET /v1/analytics/countries`: weather requests for places in a country. */
export interface CountryCount {
  /** ISO 3166-1 alpha-2 */
  country: string;
  requests: number;
}

/** A row of `GET /v1/analytics/peak-hours`: API requests in one UTC weekday and hour. */
export interface PeakHour {
  /** Monday 0 ... Sunday 6 */
  weekday: number;
  /** 0-23, UTC */
  hour: number;
  requests: number;
}

/** A row of `GET /v1/analytics/cache`: weather answers of a period by cache status. */
export interface CachePeriod {
  /** RFC 3339 */
  start: string;
  hits: number;
  misses: number;
  stale: number;
  /** hits / (hits + misses + stale); null without answers */
  hitRatio: number | null;
}

/** A row of `GET /v1/analytics/upstream`: calls to Open-Meteo in a period, per API. */
export interface UpstreamPeriod {
  /** RFC 3339 */
  start: string;
  /** calls to the geocoding API */
  geocode: number;
  /** calls to the forecast API */
  forecast: number;
}

/** An answer that is a list (the analytics routes). */
export interface Listing<T> {
  items: T[];
}

/** An RFC 9457 problem document: the body of every error response. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** the request id */
  instance: string;
}

/** The `RateLimit-*` headers: the key's token bucket after this request. */
export interface RateLimit {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/** What a response said besides its body. */
export interface ResponseMeta {
  /** 200, or 304 when the client's copy was still current */
  status: number;
  requestId: string | null;
  etag: string | null;
  rateLimit: RateLimit | null;
  /** the proxy answered 304 and the body is the client's earlier copy (no transfer) */
  notModified: boolean;
}

export type WithMeta<T> = T & { readonly meta: ResponseMeta };

export function rateLimitFrom(headers: Headers): RateLimit | null {
  const limit = intHeader(headers, "ratelimit-limit");
  const remaining = intHeader(headers, "ratelimit-remaining");
  const resetSeconds = intHeader(headers, "ratelimit-reset");
  if (limit === null || remaining === null || resetSeconds === null) return null;
  return { limit, remaining, resetSeconds };
}

function intHeader(headers: Headers, name: string): number | null {
  const value = headers.get(name);
  if (value === null || !/^\d+$/.test(value.trim())) return null;
  return Number(value);
}

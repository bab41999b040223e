/** A client of the Weather Proxy Fleet HTTP API (`/v1/weather`, `/v1/usage`, `/v1/analytics/*`). */

export { WeatherProxyClient } from "./client.js";
export type {
  AnalyticsQuery,
  ClientOptions,
  RequestOptions,
  RetryPolicy,
  SeriesQuery,
  TopCitiesQuery,
  UsageHistoryQuery,
  WeatherQuery,
} from "./client.js";
export { ApiError, PROBLEM_BASE, TransportError, WeatherProxyError, kindOf } from "./errors.js";
export type { ProblemKind } from "./errors.js";
export type {
  CacheInfo,
  CachePeriod,
  CountryCount,
  Current,
  DateRange,
  Day,
  Granularity,
  Limit,
  Listing,
  Location,
  PeakHour,
  Problem,
  Quota,
  RateLimit,
  ResponseMeta,
  TopCity,
  UpstreamPeriod,
  Usage,
  UsageHistory,
  UsagePeriod,
  Weather,
  WithMeta,
} from "./models.js";

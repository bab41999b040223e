package weatherproxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Location is where the weather was observed.
type Location struct {
	Name      *string `json:"name"`    // nil for a query by coordinates
	Country   *string `json:"country"` // ISO 3166-1 alpha-2
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Timezone  *string `json:"timezone"`
}

// Current is the current conditions. Pointer fields are null when the upstream has no value.
type Current struct {
	Time             string   `json:"time"` // ISO 8601 local time, 15-minute steps
	TemperatureC     *float64 `json:"temperatureC"`
	WindSpeedKmh     *float64 `json:"windSpeedKmh"`
	WindDirectionDeg *float64 `json:"windDirectionDeg"`
	WeatherCode      *int     `json:"weatherCode"` // WMO weather code
	Description      string   `json:"description"`
	IsDay            *bool    `json:"isDay"`
}

// CacheInfo says how fresh the answer was in the proxy's cache.
type CacheInfo struct {
	Status     string `json:"status"` // hit, miss or stale
	AgeSeconds int    `json:"ageSeconds"`
	Stale      bool   `json:"stale"`
}

// Weather is the answer of GET /v1/weather. Weather data by Open-Meteo.com (CC BY 4.0).
type Weather struct {
	Location Location     `json:"location"`
	Current  Current      `json:"current"`
	Cache    CacheInfo    `json:"cache"`
	Source   string       `json:"source"`
	Meta     ResponseMeta `json:"-"`
}

// Limit is a key's token bucket as configured.
type Limit struct {
	RequestsPerMinute int `json:"requestsPerMinute"` // the sustained rate
	Burst             int `json:"burst"`             // the bucket's capacity as configured (0 counts as 1)
	Capacity          int `json:"capacity"`          // tokens the bucket holds (RateLimit-Limit)
	Window            int `json:"window"`            // the most requests any 60 s may admit
}

// Quota is a key's requests per UTC day or month.
type Quota struct {
	Limit     int       `json:"limit"`
	Used      int       `json:"used"`
	Remaining int       `json:"remaining"`
	ResetsAt  time.Time `json:"resetsAt"` // the period's end
}

// Usage is the answer of GET /v1/usage: the calling key's limit, what is left, today's counts.
type Usage struct {
	KeyID        string         `json:"keyId"`
	Limit        Limit          `json:"limit"`
	Remaining    int            `json:"remaining"`    // whole tokens left
	ResetSeconds int            `json:"resetSeconds"` // until the bucket is full
	Quota        *Quota         `json:"quota"`
	Requests     map[string]any `json:"requests"`
	Meta         ResponseMeta   `json:"-"`
}

// RateLimit holds the RateLimit-* headers: the key's token bucket after the request.
type RateLimit struct {
	Limit     int           // RateLimit-Limit: the bucket's capacity
	Remaining int           // RateLimit-Remaining: whole tokens left
	Reset     time.Duration // RateLimit-Reset: until the bucket is full
}

// ResponseMeta is what a response said besides its body.
type ResponseMeta struct {
	Status      int    // 200, or 304 when the client's copy was still current
	RequestID   string // X-Request-ID: quote it when reporting a problem
	ETag        string
	RateLimit   *RateLimit // nil when the response had no RateLimit-* headers
	NotModified bool       // the body is the client's earlier copy (no transfer)
}

func intHeader(h http.Header, name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get(name)))
	return n, err == nil
}

func rateLimitFrom(h http.Header) *RateLimit {
	limit, ok1 := intHeader(h, "RateLimit-Limit")
	remaining, ok2 := intHeader(h, "RateLimit-Remaining")
	reset, ok3 := intHeader(h, "RateLimit-Reset")
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	return &RateLimit{Limit: limit, Remaining: remaining, Reset: time.Duration(reset) * time.Second}
}

// Range is a span of whole UTC days, From and To both included (at most 366 days): the from and
// to of a query. The calendar date of each is sent, in its own location (build them with
// time.Date(y, m, d, 0, 0, 0, 0, time.UTC)). The zero Range asks for the proxy's default, the
// last 7 days.
type Range struct {
	From, To time.Time
}

// IsZero reports whether r is the zero Range.
func (r Range) IsZero() bool { return r.From.IsZero() && r.To.IsZero() }

// Granularity is the length of a period of a series.
type Granularity string

// The granularities; the empty one leaves it to the proxy (a day).
const (
	Daily  Granularity = "day"
	Hourly Granularity = "hour"
)

// UsagePeriod is a period of GET /v1/usage?from=&to=.
type UsagePeriod struct {
	Start     time.Time `json:"start"`     // the UTC day or hour
	Requests  int       `json:"requests"`  // of the key in the period
	Errors    int       `json:"errors"`    // of which answered with a status of 400 or more
	CacheHits int       `json:"cacheHits"` // of which served fresh from the cache
}

// UsageHistory is the answer of GET /v1/usage?from=&to=&granularity=: the calling key's counts
// per UTC day or hour.
type UsageHistory struct {
	Key     string        `json:"key"`     // the key's id (namespace/name of the ApiKey)
	Periods []UsagePeriod `json:"periods"` // every period of the range, oldest first
	Meta    ResponseMeta  `json:"-"`
}

// TopCity is a row of GET /v1/analytics/top-cities: a place by the geocoder's name and country.
type TopCity struct {
	Name     string  `json:"name"`
	Country  *string `json:"country"` // ISO 3166-1 alpha-2
	Requests int     `json:"requests"`
}

// CountryCount is a row of GET /v1/analytics/countries: weather requests for places in a country.
type CountryCount struct {
	Country  string `json:"country"` // ISO 3166-1 alpha-2
	Requests int    `json:"requests"`
}

// PeakHour is a row of GET /v1/analytics/peak-hours: API requests in one UTC weekday and hour.
type PeakHour struct {
	Weekday  int `json:"weekday"` // Monday 0 ... Sunday 6 (not time.Weekday, where Sunday is 0)
	Hour     int `json:"hour"`    // 0-23, UTC
	Requests int `json:"requests"`
}

// CachePeriod is a row of GET /v1/analytics/cache: weather answers of a period by cache status.
type CachePeriod struct {
	Start    time.Time `json:"start"`
	Hits     int       `json:"hits"`
	Misses   int       `json:"misses"`
	Stale    int       `json:"stale"`
	HitRatio *float64  `json:"hitRatio"` // hits / (hits + misses + stale); nil without answers
}

// UpstreamPeriod is a row of GET /v1/analytics/upstream: calls to Open-Meteo in a period, per API.
type UpstreamPeriod struct {
	Start    time.Time `json:"start"`
	Geocode  int       `json:"geocode"`  // calls to the geocoding API
	Forecast int       `json:"forecast"` // calls to the forecast API
}

// Listing is an answer that is a list (the analytics routes).
type Listing[T any] struct {
	Items []T
	Meta  ResponseMeta
}

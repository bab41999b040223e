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

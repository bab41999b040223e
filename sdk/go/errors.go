package weatherproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ProblemBase prefixes the type of every problem this API defines.
const ProblemBase = "https://weatherproxy.dev/problems/"

// Problem is an RFC 9457 problem document: the body of every error response.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"` // the request id
}

// Kind names a class of refusal.
type Kind string

// The kinds of refusal.
const (
	KindBadRequest           Kind = "bad-request"
	KindMissingAPIKey        Kind = "missing-api-key"
	KindInvalidKey           Kind = "invalid-key" // unknown, disabled or expired
	KindInsufficientScope    Kind = "insufficient-scope"
	KindNotFound             Kind = "not-found"
	KindAnalyticsDisabled    Kind = "analytics-disabled" // 404: the fleet keeps no usage history
	KindRateLimited          Kind = "rate-limited"
	KindQuotaExceeded        Kind = "quota-exceeded"
	KindUpstreamUnavailable  Kind = "upstream-unavailable"
	KindAnalyticsUnavailable Kind = "analytics-unavailable" // 503: the analytics database does not answer
	KindDeadlineExceeded     Kind = "deadline-exceeded"
	KindServerError          Kind = "server-error"
	KindOther                Kind = "other"
)

// Sentinels for errors.Is: errors.Is(err, weatherproxy.ErrQuotaExceeded).
var (
	ErrBadRequest           = errors.New("weatherproxy: bad request")
	ErrMissingAPIKey        = errors.New("weatherproxy: missing API key")
	ErrInvalidKey           = errors.New("weatherproxy: invalid API key")
	ErrInsufficientScope    = errors.New("weatherproxy: insufficient scope")
	ErrNotFound             = errors.New("weatherproxy: not found")
	ErrAnalyticsDisabled    = errors.New("weatherproxy: analytics disabled")
	ErrRateLimited          = errors.New("weatherproxy: rate limited")
	ErrQuotaExceeded        = errors.New("weatherproxy: quota exceeded")
	ErrUpstreamUnavailable  = errors.New("weatherproxy: upstream unavailable")
	ErrAnalyticsUnavailable = errors.New("weatherproxy: analytics unavailable")
	ErrDeadlineExceeded     = errors.New("weatherproxy: deadline exceeded")
	ErrServerError          = errors.New("weatherproxy: server error")
)

var sentinels = map[Kind]error{
	KindBadRequest:           ErrBadRequest,
	KindMissingAPIKey:        ErrMissingAPIKey,
	KindInvalidKey:           ErrInvalidKey,
	KindInsufficientScope:    ErrInsufficientScope,
	KindNotFound:             ErrNotFound,
	KindAnalyticsDisabled:    ErrAnalyticsDisabled,
	KindRateLimited:          ErrRateLimited,
	KindQuotaExceeded:        ErrQuotaExceeded,
	KindUpstreamUnavailable:  ErrUpstreamUnavailable,
	KindAnalyticsUnavailable: ErrAnalyticsUnavailable,
	KindDeadlineExceeded:     ErrDeadlineExceeded,
	KindServerError:          ErrServerError,
}

var kindBySlug = map[string]Kind{
	"bad-request":               KindBadRequest,
	"missing-api-key":           KindMissingAPIKey,
	"invalid-key":               KindInvalidKey,
	"key-disabled":              KindInvalidKey,
	"key-expired":               KindInvalidKey,
	"insufficient-scope":        KindInsufficientScope,
	"not-found":                 KindNotFound,
	"analytics-disabled":        KindAnalyticsDisabled,
	"rate-limited":              KindRateLimited,
	"quota-exceeded":            KindQuotaExceeded,
	"upstream-unavailable":      KindUpstreamUnavailable,
	"upstream-budget-exhausted": KindUpstreamUnavailable,
	"analytics-unavailable":     KindAnalyticsUnavailable,
	"deadline-exceeded":         KindDeadlineExceeded,
}

var kindByStatus = map[int]Kind{
	400: KindBadRequest,
	401: KindMissingAPIKey,
	403: KindInvalidKey,
	404: KindNotFound,
	429: KindRateLimited,
	503: KindUpstreamUnavailable,
	504: KindDeadlineExceeded,
}

// KindOf classifies a problem: by its type for this API's problems, else by status.
func KindOf(p Problem) Kind {
	if slug, ok := strings.CutPrefix(p.Type, ProblemBase); ok {
		if kind, ok := kindBySlug[slug]; ok {
			return kind
		}
	}
	if kind, ok := kindByStatus[p.Status]; ok {
		return kind
	}
	if p.Status >= 500 {
		return KindServerError
	}
	return KindOther
}

// APIError is a refusal by the proxy. Use errors.As to read it, errors.Is with the Err* sentinels
// to test its kind.
type APIError struct {
	Problem
	Kind       Kind
	RetryAfter time.Duration // from Retry-After; 0 when the proxy sent none
	RateLimit  *RateLimit
}

func (e *APIError) Error() string {
	return fmt.Sprintf("weatherproxy: %d %s: %s", e.Status, e.Title, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRateLimited) and the like work.
func (e *APIError) Unwrap() error { return sentinels[e.Kind] }

// parseProblem reads a problem document; it makes one up from the status when the body is not one
// (an ingress or load balancer answering for the proxy).
func parseProblem(status int, body []byte) Problem {
	var p Problem
	if err := json.Unmarshal(body, &p); err == nil && p.Type != "" {
		if p.Status == 0 {
			p.Status = status
		}
		return p
	}
	detail := strings.TrimSpace(string(body))
	if len(detail) > 200 {
		detail = detail[:200]
	}
	return Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

module github.com/weather-proxy/weather-proxy-fleet/sdk/go

go 1.22

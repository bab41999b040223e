module github.com/weather-proxy/weather-proxy-fleet/tests/integration/sdk/contract_drivers/go

go 1.22

require github.com/weather-proxy/weather-proxy-fleet/sdk/go v0.0.0

replace github.com/weather-proxy/weather-proxy-fleet/sdk/go => ../../../../../sdk/go

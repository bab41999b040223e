-- Argo CD health of a WeatherProxy (argocd-cm key
-- resource.customizations.health.weatherproxy.dev_WeatherProxy). Lua 5.1 (gopher-lua).
--   Progressing: no status yet, status older than the spec, no Ready condition, Ready
--                Unknown, or Ready=False for a reason the operator is still working on;
--   Healthy:     Ready=True for the current generation;
--   Degraded:    Ready=False for a reason that needs a person (bad spec, failed reconcile).
local terminal_reasons = {
  InvalidSpec = true,
  ReconcileFailed = true,
  SecretNotFound = true,
  RedisSecretNotFound = true,
  ImagePullFailed = true,
}

local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile this WeatherProxy"
  return hs
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

local observed = obj.status.observedGeneration
if observed == nil or observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

local reason = ready.reason or "Unknown"
local detail = reason
if ready.message ~= nil and ready.message ~= "" then
  detail = reason .. ": " .. ready.message
end

if ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready condition is from generation " .. tostring(ready.observedGeneration)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  local replicas = obj.status.readyReplicas
  if replicas ~= nil then
    hs.message = detail .. " (" .. tostring(replicas) .. " ready replicas)"
  else
    hs.message = detail
  end
  return hs
end
if ready.status == "False" and terminal_reasons[reason] then
  hs.status = "Degraded"
  hs.message = detail
  return hs
end
hs.status = "Progressing"
hs.message = detail
return hs

-- Argo CD health of an ApiKey (argocd-cm key
-- resource.customizations.health.weatherproxy.dev_ApiKey). Lua 5.1 (gopher-lua).
--   Progressing: no status yet, status older than the spec, no Ready condition, Ready
--                Unknown, or Ready=False for a transient reason;
--   Healthy:     Ready=True (the key's hash is published to its fleet);
--   Degraded:    Ready=False because the key cannot work until a person acts: it expired,
--                is disabled, names a missing WeatherProxy or Secret, or is invalid.
local terminal_reasons = {
  Expired = true,
  Disabled = true,
  ProxyNotFound = true,
  SecretNotFound = true,
  InvalidSpec = true,
  ReconcileFailed = true,
}

local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile this ApiKey"
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

-- The Ready condition carries observedGeneration too; either tells what was reconciled.
local observed = obj.status.observedGeneration
if observed == nil and ready ~= nil then
  observed = ready.observedGeneration
end
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
  hs.message = detail
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
